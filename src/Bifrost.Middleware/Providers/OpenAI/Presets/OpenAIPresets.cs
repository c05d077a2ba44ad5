using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Providers.OpenAI.Presets;

/// <summary>
/// The named presets of the OpenAI-compatible type, one row each: <c>"Type": "groq"</c> plus a key is a whole provider.
/// Every preset drops the OpenAI-only fields (<see cref="OpenAIPreset.DefaultOpenAIOnlyFields"/>) and sends
/// <c>max_completion_tokens</c> as <c>max_tokens</c>; the quirks below are the documented differences of each provider
/// (the page is the row's <see cref="OpenAIPreset.Source"/>).
/// </summary>
internal static class OpenAIPresets
{
    /// <summary>Every preset, by name.</summary>
    public static readonly IReadOnlyList<OpenAIPreset> All =
    [
        // https://console.groq.com/docs/openai: logprobs, logit_bias, top_logprobs and messages[].name are rejected (400); n must be 1.
        new("groq", "https://api.groq.com/openai/v1", KeyRequired: true, "GROQ_API_KEY", "https://console.groq.com/docs/openai") { Quirks = Groq },
        // Mistral's chat API: random_seed instead of seed; tool_choice auto/none/any/required (no specific function);
        // reasoning_effort none or high (maximhq/bifrost applyMistralCompatibility).
        new("mistral", "https://api.mistral.ai/v1", KeyRequired: true, "MISTRAL_API_KEY", "https://docs.camel-ai.org/reference/camel.configs.mistral_config.md") { Quirks = Mistral },
        // xAI: Grok reasoning models reject presence_penalty, frequency_penalty and stop; grok-4 rejects reasoning_effort
        // (maximhq/bifrost applyXAICompatibility).
        new("xai", "https://api.x.ai/v1", KeyRequired: true, "XAI_API_KEY", "maximhq/bifrost core/providers/openai (applyXAICompatibility)") { Quirks = Xai },
        // https://api-docs.deepseek.com/zh-cn/guides/reasoning_model: answers carry reasoning_content; sending it back on an ordinary
        // assistant turn is a 400 (tool-call turns must replay it); deepseek-reasoner errors on logprobs/top_logprobs.
        new("deepseek", "https://api.deepseek.com", KeyRequired: true, "DEEPSEEK_API_KEY", "https://api-docs.deepseek.com/zh-cn/guides/reasoning_model") { Quirks = DeepSeek, ReasoningContent = true },
        // OpenRouter speaks OpenAI's API with extras (models[], provider{}, reasoning{}) that pass through; it answers
        // reasoning as message.reasoning already. Attribution headers (HTTP-Referer, X-Title) go in the provider's Headers.
        new("openrouter", "https://openrouter.ai/api/v1", KeyRequired: true, "OPENROUTER_API_KEY", "https://docs.boundaryml.com/ref/llm-client-providers/openai-generic-open-router"),
        // https://docs.together.ai/docs/inference/openai-compatibility: extras (top_k, repetition_penalty, min_p) pass through.
        new("together", "https://api.together.ai/v1", KeyRequired: true, "TOGETHER_API_KEY", "https://docs.together.ai/docs/inference/openai-compatibility"),
        // Fireworks keeps prediction; its cache key is prompt_cache_isolation_key (maximhq/bifrost, case Fireworks).
        new("fireworks", "https://api.fireworks.ai/inference/v1", KeyRequired: true, "FIREWORKS_API_KEY", "https://www.developersdigest.tech/reference/api-compatibility/fireworks")
        {
            Quirks = Fireworks,
            OpenAIOnlyFields = ["prompt_cache_retention", "verbosity", "store", "web_search_options"],
        },
        // https://inference-docs.cerebras.ai/resources/openai: 400 on frequency_penalty, presence_penalty, logit_bias,
        // parallel_tool_calls, service_tier; tool_choice only auto or none.
        new("cerebras", "https://api.cerebras.ai/v1", KeyRequired: true, "CEREBRAS_API_KEY", "https://inference-docs.cerebras.ai/resources/openai") { Quirks = Cerebras },
        // https://docs.perplexity.ai/guides/chat-completions-guide: no function calling, no /models; web_search_options is its own.
        new("perplexity", "https://api.perplexity.ai", KeyRequired: true, "PERPLEXITY_API_KEY", "https://docs.perplexity.ai/guides/chat-completions-guide")
        {
            Quirks = Perplexity,
            HasModelsEndpoint = false,
            OpenAIOnlyFields = ["prediction", "prompt_cache_key", "prompt_cache_retention", "verbosity", "store"],
        },
        // Local servers: no key needed (one is sent when configured: vLLM --api-key, LM Studio's API token, Ollama's cloud).
        new("ollama", "http://localhost:11434/v1", KeyRequired: false, "OLLAMA_BASE_URL", "https://docs.ollama.com/api/openai-compatibility"),
        new("vllm", "http://localhost:8000/v1", KeyRequired: false, "VLLM_BASE_URL", "https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html"),
        new("lmstudio", "http://localhost:1234/v1", KeyRequired: false, "LMSTUDIO_BASE_URL", "https://lmstudio.ai/docs/api/openai-api"),
    ];

    /// <summary>The preset of a type name (ignoring case), or null.</summary>
    public static OpenAIPreset? Find(string? name) =>
        name is null ? null : All.FirstOrDefault(p => p.Name.Equals(name.Trim(), StringComparison.OrdinalIgnoreCase));

    /// <summary>Registers one provider type per preset (once, however often AddBifrost runs) and the adapters' holder.</summary>
    public static void Register(IServiceCollection services)
    {
        services.TryAddSingleton<PresetAdapters>();
        foreach (var type in PresetProviderType.All)
        {
            if (!services.Any(d => d.ServiceType == typeof(IProviderType) && !d.IsKeyedService && ReferenceEquals(d.ImplementationInstance, type)))
            {
                services.AddSingleton<IProviderType>(type);
            }
        }
    }

    private static void Groq(PresetRequest r)
    {
        if (r.Integer("n") is > 1)
        {
            throw r.Refuse("n", "supports only n = 1 (https://console.groq.com/docs/openai).");
        }

        r.Drop("logprobs", "top_logprobs", "logit_bias");
        r.DropFromMessages(null, "name");
    }

    private static void Mistral(PresetRequest r)
    {
        r.Rename("seed", "random_seed");
        if (r.Body["tool_choice"] is JsonObject)
        {
            r.Set("tool_choice", "any"); // Mistral cannot force one named function: "any" forces a tool call
        }

        if (r.String("reasoning_effort") is { } effort && effort is not ("none" or "high"))
        {
            r.Set("reasoning_effort", "high");
        }
    }

    private static void Xai(PresetRequest r)
    {
        var model = r.Model;
        var reasoning = model.StartsWith("grok-4", StringComparison.OrdinalIgnoreCase) || model.StartsWith("grok-3-mini", StringComparison.OrdinalIgnoreCase);
        if (!reasoning)
        {
            return;
        }

        r.Drop("presence_penalty", "frequency_penalty", "stop");
        if (model.StartsWith("grok-4", StringComparison.OrdinalIgnoreCase))
        {
            r.Drop("reasoning_effort");
        }
    }

    private static void DeepSeek(PresetRequest r)
    {
        foreach (var message in r.Messages)
        {
            if (message["role"]?.GetValueKind() != JsonValueKind.String || message["role"]!.GetValue<string>() != "assistant")
            {
                continue;
            }

            if (message["tool_calls"] is JsonArray { Count: > 0 })
            {
                // A tool-call turn replays its reasoning, under DeepSeek's name.
                if (!message.ContainsKey("reasoning_content") && message.TryGetPropertyValue("reasoning", out var reasoning) && reasoning is not null)
                {
                    message["reasoning_content"] = reasoning.DeepClone();
                    r.Changes.Add("messages[].reasoning→reasoning_content");
                }
            }
            else if (message.Remove("reasoning_content"))
            {
                r.Changes.Add("-messages[].reasoning_content");
            }

            if (message.Remove("reasoning"))
            {
                r.Changes.Add("-messages[].reasoning");
            }

            if (message.Remove("reasoning_details"))
            {
                r.Changes.Add("-messages[].reasoning_details");
            }
        }

        if (r.Model.Contains("reasoner", StringComparison.OrdinalIgnoreCase))
        {
            r.Drop("logprobs", "top_logprobs");
        }
    }

    private static void Fireworks(PresetRequest r) => r.Rename("prompt_cache_key", "prompt_cache_isolation_key");

    private static void Cerebras(PresetRequest r)
    {
        if (r.Body["tool_choice"] is { } choice && (choice.GetValueKind() != JsonValueKind.String || choice.GetValue<string>() is not ("auto" or "none")))
        {
            throw r.Refuse("tool_choice", "accepts only tool_choice 'auto' or 'none' (https://inference-docs.cerebras.ai/resources/openai).");
        }

        r.Drop("frequency_penalty", "presence_penalty", "logit_bias", "parallel_tool_calls", "service_tier");
        r.DropFromMessages("assistant", "reasoning", "reasoning_content", "reasoning_details");
    }

    private static void Perplexity(PresetRequest r)
    {
        if (r.Body["tools"] is JsonArray { Count: > 0 })
        {
            throw r.Refuse("tools", "has no function calling (https://docs.perplexity.ai/guides/chat-completions-guide).");
        }

        r.Drop("tools", "tool_choice", "parallel_tool_calls", "stop", "logit_bias", "logprobs", "top_logprobs", "seed", "service_tier");
    }
}

/// <summary>
/// The provider type of one preset: the OpenAI-compatible adapter with the preset's base URL and quirks. Only an explicit
/// <c>Type</c> selects it (a provider named <c>groq</c> without a Type stays <c>openai</c>, as before presets existed).
/// </summary>
internal sealed class PresetProviderType(OpenAIPreset preset) : IProviderType
{
    /// <summary>One type per preset (shared instances: a type holds no state, the adapters live in <see cref="PresetAdapters"/>).</summary>
    public static readonly IReadOnlyList<PresetProviderType> All = [.. OpenAIPresets.All.Select(static p => new PresetProviderType(p))];

    public OpenAIPreset Preset { get; } = preset;

    public string Name => Preset.Name;

    public bool ImpliedByProviderName => false;

    public IProviderAdapter CreateAdapter(IServiceProvider services, string providerName) => services.GetRequiredService<PresetAdapters>().For(Preset);

    public void Validate(string prefix, ProviderOptions options, ValidateOptionsResultBuilder errors)
    {
        ProviderTypeChecks.HttpBaseUrl(prefix, options, errors);
        if (Preset.KeyRequired && options.Keys.Count == 0 && !options.Headers.ContainsKey(options.AuthHeader))
        {
            errors.AddError($"{prefix}:Keys: type '{Preset.Name}' needs a key, e.g. \"Keys\": [ {{ \"Value\": \"env:{Preset.KeyVariable}\" }} ].");
        }
    }
}

/// <summary>The preset adapters of one service provider: one OpenAI-compatible adapter per preset, created on first use.</summary>
internal sealed partial class PresetAdapters : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<OpenAICompatibleAdapter>> _adapters = new(StringComparer.OrdinalIgnoreCase);
    private readonly IHttpClientFactory _httpClientFactory;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public PresetAdapters(IHttpClientFactory httpClientFactory, TimeProvider time, ILoggerFactory? loggerFactory = null)
    {
        _httpClientFactory = httpClientFactory;
        _time = time;
        _logger = (ILogger?)loggerFactory?.CreateLogger("Bifrost.Middleware.Providers.Presets") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    }

    public OpenAICompatibleAdapter For(OpenAIPreset preset) =>
        _adapters.GetOrAdd(preset.Name, static (_, state) => new Lazy<OpenAICompatibleAdapter>(() => new OpenAICompatibleAdapter(state.Self._httpClientFactory, state.Self._time)
        {
            Preset = state.Preset,
            PresetChanged = state.Self.LogChanges,
        }), (Self: this, Preset: preset)).Value; // Lazy: a lost race creates no second adapter

    public void Dispose()
    {
        foreach (var adapter in _adapters.Values)
        {
            if (adapter.IsValueCreated)
            {
                adapter.Value.Dispose();
            }
        }
    }

    private void LogChanges(ProviderContext context, OpenAIPreset preset, IReadOnlyList<string> changes)
    {
        if (changes.Count > 0)
        {
            RequestAdjusted(_logger, preset.Name, context.ProviderName, changes); // a list is logged as "a, b, c"
        }
    }

    [LoggerMessage(EventId = 1060, Level = LogLevel.Debug, Message = "Preset '{Preset}' adjusted the request for provider '{Provider}' to the provider's API: {Changes}.")]
    private static partial void RequestAdjusted(ILogger logger, string preset, string provider, IReadOnlyList<string> changes);
}
