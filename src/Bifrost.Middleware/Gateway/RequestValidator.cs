using System.Globalization;

namespace Bifrost.Middleware.Gateway;

/// <summary>
/// The parameter checks of every inference request type, against OpenAI's documented ranges (README, "Request limits").
/// Called from <see cref="RequestPlanner"/>, which every path reaches before anything is stored or sent: the
/// synchronous call, SSE, both async submits, batch lines and direct <see cref="IBifrostClient"/> calls. A bad value is a
/// 400 <c>invalid_request_error</c> whose <c>param</c> names it (<c>n</c>, <c>messages[2].content[0]</c>, ...).
/// Non-finite numbers (JSON <c>1e309</c> reads as Infinity) are out of every range.
/// </summary>
internal static partial class RequestValidator
{
    /// <summary>Most choices per prompt (<c>n</c>).</summary>
    public const int MaxChoices = 128;

    /// <summary>Most stop sequences.</summary>
    public const int MaxStopSequences = 4;

    /// <summary>Most <c>top_logprobs</c> (chat, Responses).</summary>
    public const int MaxTopLogprobs = 20;

    /// <summary>Most <c>logprobs</c> of legacy completions.</summary>
    public const int MaxCompletionLogprobs = 5;

    /// <summary>Most <c>best_of</c> of legacy completions.</summary>
    public const int MaxBestOf = 20;

    /// <summary>Most function tools of a chat request.</summary>
    public const int MaxTools = 128;

    /// <summary>Most items in an embeddings <c>input</c> or completions <c>prompt</c> array.</summary>
    public const int MaxInputItems = 2048;

    /// <summary>Most token ids summed over an embeddings (or completions) token input.</summary>
    public const int MaxInputTokens = 300_000;

    /// <summary>Most embedding <c>dimensions</c> the gateway passes on (no embedding model has more; providers bound it further).</summary>
    public const int MaxDimensions = 16_384;

    /// <summary>Least <c>max_output_tokens</c> of the Responses API.</summary>
    public const int MinResponsesOutputTokens = 16;

    /// <summary>Most <c>fallbacks</c> (each may cost a provider call and its retries).</summary>
    public const int MaxFallbacks = 16;

    public static void Validate(ChatCompletionRequest request)
    {
        if (request.Messages is not { Count: > 0 } messages)
        {
            throw Missing("messages", "'messages' is required and must contain at least one message.");
        }

        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw Invalid($"messages[{i}]", $"'messages[{i}]' must be a message object, not null.");
            if (string.IsNullOrEmpty(message.Role))
            {
                throw Invalid($"messages[{i}].role", $"'messages[{i}].role' is required.");
            }

            if (message.Content?.Parts is { } parts)
            {
                NoNulls(parts, $"messages[{i}].content", "a content part object");
            }

            if (message.ToolCalls is { } calls)
            {
                for (var j = 0; j < calls.Count; j++)
                {
                    var call = calls[j] ?? throw Invalid($"messages[{i}].tool_calls[{j}]", $"'messages[{i}].tool_calls[{j}]' must be a tool call object, not null.");
                    if (call.Type is null or "function" && call.Function is null)
                    {
                        throw Missing($"messages[{i}].tool_calls[{j}].function", $"'messages[{i}].tool_calls[{j}].function' is required for a function tool call.");
                    }
                }
            }
        }

        Number("temperature", request.Temperature, 0, 2);
        Number("top_p", request.TopP, 0, 1);
        Number("presence_penalty", request.PresencePenalty, -2, 2);
        Number("frequency_penalty", request.FrequencyPenalty, -2, 2);
        Integer("n", request.N, 1, MaxChoices);
        Integer("max_tokens", request.MaxTokens, 1, int.MaxValue);
        Integer("max_completion_tokens", request.MaxCompletionTokens, 1, int.MaxValue);
        Integer("top_logprobs", request.TopLogprobs, 0, MaxTopLogprobs);
        if (request.TopLogprobs is not null && request.Logprobs != true)
        {
            throw Invalid("top_logprobs", "'top_logprobs' requires 'logprobs': true.");
        }

        LogitBias(request.LogitBias);
        Stop(request.Stop);
        if (request.Tools is { } tools)
        {
            if (tools.Count > MaxTools)
            {
                throw Invalid("tools", $"'tools' may hold at most {MaxTools} tools; it holds {tools.Count}.");
            }

            for (var i = 0; i < tools.Count; i++)
            {
                var tool = tools[i] ?? throw Invalid($"tools[{i}]", $"'tools[{i}]' must be a tool object, not null.");
                if (tool.Type is null or "function" && string.IsNullOrEmpty(tool.Function?.Name))
                {
                    throw Missing($"tools[{i}].function.name", $"'tools[{i}].function.name' is required for a function tool.");
                }
            }
        }

        Fallbacks(request.Fallbacks);
    }

    public static void Validate(TextCompletionRequest request)
    {
        var prompt = request.Prompt ?? throw Missing("prompt", "'prompt' is required.");
        Items(prompt, "prompt");
        Number("temperature", request.Temperature, 0, 2);
        Number("top_p", request.TopP, 0, 1);
        Integer("n", request.N, 1, MaxChoices);
        Integer("max_tokens", request.MaxTokens, 0, int.MaxValue);
        Integer("logprobs", request.Logprobs, 0, MaxCompletionLogprobs);
        Stop(request.Stop);
        var extra = request.AdditionalProperties;
        Number("presence_penalty", ExtensionNumber(extra, "presence_penalty"), -2, 2);
        Number("frequency_penalty", ExtensionNumber(extra, "frequency_penalty"), -2, 2);
        var bestOf = ExtensionInteger(extra, "best_of", 1, MaxBestOf);
        if (bestOf is { } best && best < (request.N ?? 1))
        {
            throw Invalid("best_of", $"'best_of' ({best}) must be at least 'n' ({request.N}).");
        }

        if (extra is not null && extra.TryGetValue("logit_bias", out var bias) && bias.ValueKind != JsonValueKind.Null)
        {
            if (bias.ValueKind != JsonValueKind.Object)
            {
                throw WrongType("logit_bias", "'logit_bias' must be an object mapping token ids to biases.");
            }

            foreach (var entry in bias.EnumerateObject())
            {
                TokenIdKey(entry.Name);
                Number($"logit_bias.{entry.Name}", ReadNumber(entry.Value, $"logit_bias.{entry.Name}"), -100, 100);
            }
        }

        Fallbacks(request.Fallbacks);
    }

    public static void Validate(EmbeddingRequest request)
    {
        var input = request.Input;
        if (input is null || input.Count == 0)
        {
            throw Missing("input", "'input' is required and must not be empty.");
        }

        Items(input, "input");
        if (input.Texts is { } texts)
        {
            for (var i = 0; i < texts.Count; i++)
            {
                if (texts[i].Length == 0)
                {
                    var param = input.IsSingle ? "input" : $"input[{i}]";
                    throw Invalid(param, $"'{param}' must not be an empty string.");
                }
            }
        }

        if (request.EncodingFormat is not (null or "float" or "base64"))
        {
            throw Invalid("encoding_format", "'encoding_format' must be \"float\" or \"base64\".");
        }

        Integer("dimensions", request.Dimensions, 1, MaxDimensions);
        Fallbacks(request.Fallbacks);
    }

    /// <summary>A Responses request (also <c>responses/input_tokens</c>).</summary>
    public static void Validate(ResponsesRequest request)
    {
        var input = request.Input ?? throw Missing("input", "'input' is required.");
        if (input.Items is { } items)
        {
            for (var i = 0; i < items.Count; i++)
            {
                var item = items[i] ?? throw Invalid($"input[{i}]", $"'input[{i}]' must be an item object, not null.");
                if (item.Content?.Parts is { } parts)
                {
                    NoNulls(parts, $"input[{i}].content", "a content part object");
                }
            }
        }

        if (request.Tools is { } tools)
        {
            for (var i = 0; i < tools.Count; i++)
            {
                var tool = tools[i] ?? throw Invalid($"tools[{i}]", $"'tools[{i}]' must be a tool object, not null.");
                if (tool.Type == "function" && string.IsNullOrEmpty(tool.Name))
                {
                    throw Missing($"tools[{i}].name", $"'tools[{i}].name' is required for a function tool.");
                }
            }
        }

        Integer("max_output_tokens", request.MaxOutputTokens, MinResponsesOutputTokens, int.MaxValue);
        Number("temperature", request.Temperature, 0, 2);
        Number("top_p", request.TopP, 0, 1);
        var extra = request.AdditionalProperties;
        ExtensionInteger(extra, "top_logprobs", 0, MaxTopLogprobs);
        ExtensionInteger(extra, "max_tool_calls", 0, int.MaxValue);
        Fallbacks(request.Fallbacks);
    }

    private static void Items(TextInput input, string name)
    {
        if (input.Count == 0)
        {
            throw Invalid(name, $"'{name}' must not be an empty array.");
        }

        if (input.Count > MaxInputItems)
        {
            throw Invalid(name, $"'{name}' may hold at most {MaxInputItems} items; it holds {input.Count}.");
        }

        if (input.Texts is { } texts)
        {
            NoNulls(texts, name, "a string");
            return;
        }

        var arrays = input.Tokens!;
        long total = 0;
        for (var i = 0; i < arrays.Count; i++)
        {
            var param = input.IsSingle ? name : $"{name}[{i}]";
            var tokens = arrays[i];
            if (tokens is not { Length: > 0 })
            {
                throw Invalid(param, $"'{param}' must be a non-empty array of token ids.");
            }

            foreach (var token in tokens)
            {
                if (token < 0)
                {
                    throw Invalid(param, $"'{param}' holds a negative token id ({token}).");
                }
            }

            total += tokens.Length;
        }

        if (total > MaxInputTokens)
        {
            throw Invalid(name, $"'{name}' holds {total} token ids; at most {MaxInputTokens} are allowed in one request.");
        }
    }

    private static void Stop(IList<string>? stop)
    {
        if (stop is null)
        {
            return;
        }

        if (stop.Count > MaxStopSequences)
        {
            throw Invalid("stop", $"'stop' may hold at most {MaxStopSequences} sequences; it holds {stop.Count}.");
        }

        NoNulls(stop, "stop", "a string");
    }

    private static void LogitBias(IDictionary<string, double>? bias)
    {
        if (bias is null)
        {
            return;
        }

        foreach (var (key, value) in bias)
        {
            TokenIdKey(key);
            Number($"logit_bias.{key}", value, -100, 100);
        }
    }

    private static void TokenIdKey(string key)
    {
        if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            throw Invalid("logit_bias", $"'logit_bias' keys must be token ids (non-negative integers); '{Shorten(key)}' is not.");
        }
    }

    private static void Fallbacks(IList<string>? fallbacks)
    {
        if (fallbacks is { Count: > MaxFallbacks })
        {
            throw Invalid("fallbacks", $"'fallbacks' may hold at most {MaxFallbacks} models; it holds {fallbacks.Count}.");
        }
    }

    private static void NoNulls<T>(IList<T> items, string name, string what)
        where T : class
    {
        for (var i = 0; i < items.Count; i++)
        {
            if (items[i] is null)
            {
                throw Invalid($"{name}[{i}]", $"'{name}[{i}]' must be {what}, not null.");
            }
        }
    }

    private static void Number(string name, double? value, double min, double max)
    {
        if (value is { } number && !(number >= min && number <= max))
        {
            var text = double.IsFinite(number) ? number.ToString(CultureInfo.InvariantCulture) : "not a finite number";
            throw Invalid(name, $"'{name}' must be a number between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)} ({text}).");
        }
    }

    private static void Integer(string name, long? value, long min, long max)
    {
        if (value is { } number && (number < min || number > max))
        {
            var range = max == int.MaxValue ? $"at least {min}" : $"between {min} and {max}";
            throw Invalid(name, $"'{name}' must be an integer {range} ({number}).");
        }
    }

    private static double? ExtensionNumber(IDictionary<string, JsonElement>? extra, string name) =>
        extra is not null && extra.TryGetValue(name, out var value) && value.ValueKind != JsonValueKind.Null ? ReadNumber(value, name) : null;

    private static double ReadNumber(JsonElement value, string name)
    {
        if (value.ValueKind != JsonValueKind.Number)
        {
            throw WrongType(name, $"'{name}' must be a number.");
        }

        return value.TryGetDouble(out var number) ? number : double.PositiveInfinity;
    }

    private static long? ExtensionInteger(IDictionary<string, JsonElement>? extra, string name, long min, long max)
    {
        if (extra is null || !extra.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number)
        {
            throw WrongType(name, $"'{name}' must be an integer.");
        }

        if (!value.TryGetInt64(out var number))
        {
            throw Invalid(name, $"'{name}' must be an integer between {min} and {max}.");
        }

        Integer(name, number, min, max);
        return number;
    }

    private static string Shorten(string text) => text.Length <= 32 ? text : string.Concat(text.AsSpan(0, 32), "…");

    private static BifrostException Invalid(string param, string message) =>
        BifrostErrors.InvalidValue(message, param);

    private static BifrostException Missing(string param, string message) =>
        BifrostErrors.MissingParameter(message, param);

    private static BifrostException WrongType(string param, string message) =>
        BifrostErrors.InvalidType(message, param);
}
