namespace Bifrost.Middleware.Providers.Anthropic;

/// <summary>
/// Chat completions request → Messages API request. The mapping is documented in <c>docs/anthropic.md</c>; in short:
/// system/developer messages → <c>system</c>; user content parts → text/image/document blocks; assistant
/// <c>tool_calls</c> → <c>tool_use</c> blocks; <c>tool</c> messages → <c>tool_result</c> blocks in a user turn;
/// consecutive turns of one role are merged; function tools → <c>{name, description, input_schema}</c>;
/// <c>tool_choice</c> auto/required/none/function → auto/any/none/tool; <c>parallel_tool_calls: false</c> →
/// <c>disable_parallel_tool_use</c>; <c>stop</c> → <c>stop_sequences</c>; <c>reasoning_effort</c> → a thinking budget.
/// What Anthropic cannot do (n &gt; 1, logprobs, JSON response formats, audio input, file ids) is refused with a 400
/// rather than silently dropped; sampling hints without an equivalent (seed, penalties, logit_bias) are not sent.
/// </summary>
internal static class AnthropicRequestTranslator
{
    /// <summary>max_tokens sent when the request sets neither max_tokens nor max_completion_tokens (and the provider does not configure one).</summary>
    public const int DefaultMaxTokens = 4096;

    /// <summary>Anthropic's smallest thinking budget.</summary>
    public const int MinThinkingBudget = 1024;

    /// <summary>Request fields that are Anthropic's own and are forwarded when a caller sends them alongside the OpenAI fields.</summary>
    private static readonly HashSet<string> ForwardedFields = new(StringComparer.Ordinal)
    {
        "top_k", "container", "mcp_servers", "context_management", "output_format", "output_config",
    };

    /// <summary>The thinking budget for a <c>reasoning_effort</c>: none → off, minimal 1024, low 2048, medium 8192, high 16384 tokens.</summary>
    public static int? ThinkingBudget(string? effort) => effort switch
    {
        null or "none" => null,
        "minimal" => 1024,
        "low" => 2048,
        "medium" => 8192,
        "high" => 16384,
        _ => throw Invalid($"'reasoning_effort' '{effort}' is not supported by Anthropic; use none, minimal, low, medium or high.", "reasoning_effort"),
    };

    /// <summary>Translates a chat request into a Messages request.</summary>
    /// <param name="request">The chat request (bare model).</param>
    /// <param name="defaultMaxTokens">max_tokens when the request has none.</param>
    /// <param name="forCounting">For <c>count_tokens</c>: only model, system, messages, tools, tool_choice and thinking.</param>
    public static AnthropicRequest Translate(ChatCompletionRequest request, int defaultMaxTokens, bool forCounting = false)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.N is > 1)
        {
            throw Invalid("'n' greater than 1 is not supported by Anthropic: send one request per choice.", "n");
        }

        if (request.ResponseFormat?.Type is "json_object" or "json_schema")
        {
            throw Invalid("'response_format' json_object/json_schema has no Anthropic equivalent in the Messages API: describe the JSON in the prompt, force a tool with 'tool_choice', or send Anthropic's own 'output_format' with its beta header.", "response_format");
        }

        if (request.Logprobs == true)
        {
            throw Invalid("'logprobs' is not supported by Anthropic.", "logprobs");
        }

        if (request.Messages is not { Count: > 0 } messages)
        {
            throw Invalid("'messages' is required and must contain at least one message.", "messages");
        }

        var result = new AnthropicRequest { Model = request.Model };
        TranslateMessages(messages, result);
        TranslateTools(request, result);

        // Thinking: the caller's own Anthropic "thinking" object wins over reasoning_effort.
        int budget = 0;
        if (request.AdditionalProperties?.TryGetValue("thinking", out var thinking) == true && thinking.ValueKind == JsonValueKind.Object)
        {
            result.Thinking = thinking;
            budget = thinking.TryGetProperty("budget_tokens", out var b) && b.TryGetInt32(out var value) ? value : 0;
        }

        var explicitMax = request.MaxCompletionTokens ?? request.MaxTokens;
        if (result.Thinking is null && ThinkingBudget(request.ReasoningEffort) is { } effortBudget)
        {
            // OpenAI counts reasoning inside max_completion_tokens, Anthropic counts thinking inside max_tokens: the same
            // budget. An explicit limit caps the thinking (which needs at least 1024 tokens and must stay below max_tokens).
            budget = explicitMax is { } max ? Math.Min(effortBudget, max - 1) : effortBudget;
            if (budget >= MinThinkingBudget)
            {
                result.Thinking = ThinkingObject(budget);
            }
            else
            {
                budget = 0;
            }
        }

        if (forCounting)
        {
            return result;
        }

        // Without a limit, the answer still gets the default on top of the thinking budget.
        result.MaxTokens = explicitMax ?? (defaultMaxTokens + budget);
        result.Temperature = request.Temperature;
        result.TopP = request.TopP;
        result.StopSequences = request.Stop is { Count: > 0 } stop ? [.. stop] : null;
        result.Stream = request.Stream == true ? true : null;
        if (!string.IsNullOrEmpty(request.User))
        {
            result.Metadata = new AnthropicMetadata { UserId = request.User };
        }

        result.ServiceTier = request.ServiceTier switch
        {
            "auto" => "auto",
            "default" => "standard_only",
            _ => null,
        };

        if (request.AdditionalProperties is { Count: > 0 } extra)
        {
            foreach (var (key, value) in extra)
            {
                if (ForwardedFields.Contains(key))
                {
                    (result.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))[key] = value;
                }
            }
        }

        return result;
    }

    private static JsonElement ThinkingObject(int budget) =>
        ParseElement("{\"type\":\"enabled\",\"budget_tokens\":" + budget.ToString(System.Globalization.CultureInfo.InvariantCulture) + "}");

    private static void TranslateMessages(IList<ChatCompletionMessage> messages, AnthropicRequest result)
    {
        var turns = result.Messages;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw Invalid($"'messages[{i}]' must not be null.", $"messages[{i}]");
            var blocks = new List<AnthropicContentBlock>();
            string role;
            switch (message.Role)
            {
                case "system" or "developer":
                    foreach (var block in ContentBlocks(message.Content, i, allowMedia: false))
                    {
                        (result.System ??= []).Add(block);
                    }

                    ApplyMessageCacheControl(message, result.System);
                    continue;
                case "user":
                    role = "user";
                    blocks.AddRange(ContentBlocks(message.Content, i, allowMedia: true));
                    break;
                case "assistant":
                    role = "assistant";
                    AddReasoning(message, blocks);
                    blocks.AddRange(ContentBlocks(message.Content, i, allowMedia: false));
                    if (!string.IsNullOrEmpty(message.Refusal) && message.Content is null)
                    {
                        blocks.Add(new AnthropicContentBlock { Type = "text", Text = message.Refusal });
                    }

                    AddToolUses(message, blocks, i);
                    break;
                case "tool":
                    role = "user";
                    if (string.IsNullOrEmpty(message.ToolCallId))
                    {
                        throw Invalid($"'messages[{i}].tool_call_id' is required for a tool message.", $"messages[{i}].tool_call_id");
                    }

                    var resultContent = ContentBlocks(message.Content, i, allowMedia: true).ToList();
                    blocks.Add(new AnthropicContentBlock { Type = "tool_result", ToolUseId = message.ToolCallId, Content = resultContent.Count > 0 ? resultContent : null });
                    break;
                default:
                    throw Invalid($"Message role '{message.Role}' is not supported by Anthropic (legacy 'function' messages: use tools and 'tool' messages).", $"messages[{i}].role");
            }

            if (blocks.Count == 0)
            {
                continue; // Anthropic rejects empty turns; an empty message carries nothing.
            }

            ApplyMessageCacheControl(message, blocks);
            if (turns.Count > 0 && turns[^1].Role == role)
            {
                // Consecutive tool results (and a user message after them) form one user turn; tool results stay first.
                foreach (var block in blocks)
                {
                    turns[^1].Content.Add(block);
                }
            }
            else
            {
                turns.Add(new AnthropicMessage { Role = role, Content = blocks });
            }
        }
    }

    /// <summary>A message-level <c>cache_control</c> (as some clients send it) applies to the message's last block.</summary>
    private static void ApplyMessageCacheControl(ChatCompletionMessage message, IList<AnthropicContentBlock>? blocks)
    {
        if (blocks is { Count: > 0 } && message.AdditionalProperties?.TryGetValue("cache_control", out var cache) == true && cache.ValueKind == JsonValueKind.Object)
        {
            blocks[^1].CacheControl ??= cache;
        }
    }

    private static IEnumerable<AnthropicContentBlock> ContentBlocks(ChatCompletionContent? content, int index, bool allowMedia)
    {
        if (content is null)
        {
            yield break;
        }

        if (content.Text is { } text)
        {
            if (text.Length > 0)
            {
                yield return new AnthropicContentBlock { Type = "text", Text = text };
            }

            yield break;
        }

        var parts = content.Parts!;
        for (var p = 0; p < parts.Count; p++)
        {
            var part = parts[p];
            var param = $"messages[{index}].content[{p}]";
            AnthropicContentBlock? block = part.Type switch
            {
                "text" or "refusal" or "input_text" or "output_text" => PartText(part) is { Length: > 0 } partText ? new AnthropicContentBlock { Type = "text", Text = partText } : null,
                "image_url" when allowMedia => Image(part.ImageUrl?.Url, param),
                "file" when allowMedia => Document(part, param),
                _ => throw Invalid($"Content part type '{part.Type}' is not supported by Anthropic in this message.", param + ".type"),
            };

            if (block is null)
            {
                continue;
            }

            if (part.AdditionalProperties?.TryGetValue("cache_control", out var cache) == true && cache.ValueKind == JsonValueKind.Object)
            {
                block.CacheControl = cache;
            }

            yield return block;
        }
    }

    private static string? PartText(ChatContentPart part) =>
        part.Text ?? (part.AdditionalProperties?.TryGetValue("refusal", out var refusal) == true && refusal.ValueKind == JsonValueKind.String ? refusal.GetString() : null);

    /// <summary><c>data:image/png;base64,...</c> → a base64 source; <c>http(s)://</c> → a url source.</summary>
    private static AnthropicContentBlock Image(string? url, string param)
    {
        if (string.IsNullOrEmpty(url))
        {
            throw Invalid("An image_url part needs 'image_url.url'.", param + ".image_url.url");
        }

        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            var (mediaType, data) = ParseDataUrl(url, param + ".image_url.url");
            return new AnthropicContentBlock { Type = "image", Source = new AnthropicSource { Type = "base64", MediaType = mediaType, Data = data } };
        }

        if (url.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || url.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            return new AnthropicContentBlock { Type = "image", Source = new AnthropicSource { Type = "url", Url = url } };
        }

        throw Invalid("An image URL must be an http(s) URL or a base64 data URL.", param + ".image_url.url");
    }

    /// <summary>A <c>file</c> part with inline <c>file_data</c> (a PDF data URL) → a base64 document block.</summary>
    private static AnthropicContentBlock Document(ChatContentPart part, string param)
    {
        if (part.AdditionalProperties?.TryGetValue("file", out var file) != true || file.ValueKind != JsonValueKind.Object
            || !file.TryGetProperty("file_data", out var fileData) || fileData.ValueKind != JsonValueKind.String)
        {
            throw Invalid("Anthropic accepts file parts only with inline 'file.file_data' (a base64 data URL); uploaded file ids are not supported.", param + ".file");
        }

        var value = fileData.GetString()!;
        var (mediaType, data) = value.StartsWith("data:", StringComparison.OrdinalIgnoreCase)
            ? ParseDataUrl(value, param + ".file.file_data")
            : ("application/pdf", value);
        return new AnthropicContentBlock { Type = "document", Source = new AnthropicSource { Type = "base64", MediaType = mediaType, Data = data } };
    }

    private static (string MediaType, string Data) ParseDataUrl(string url, string param)
    {
        var comma = url.IndexOf(',', StringComparison.Ordinal);
        var header = comma > 5 ? url[5..comma] : string.Empty;
        if (comma < 0 || !header.EndsWith(";base64", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
        {
            throw Invalid("A data URL must look like 'data:<media type>;base64,<data>'.", param);
        }

        return (header[..^7], url[(comma + 1)..]);
    }

    /// <summary>Signed thinking from an earlier answer (<c>reasoning_details</c>) goes first in the assistant turn, as Anthropic requires with tools.</summary>
    private static void AddReasoning(ChatCompletionMessage message, List<AnthropicContentBlock> blocks)
    {
        if (message.AdditionalProperties?.TryGetValue("reasoning_details", out var details) != true || details.ValueKind != JsonValueKind.Array)
        {
            return;
        }

        foreach (var detail in details.EnumerateArray())
        {
            if (detail.ValueKind != JsonValueKind.Object || !detail.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                continue;
            }

            switch (type.GetString())
            {
                case "reasoning.text" when detail.TryGetProperty("signature", out var signature) && signature.ValueKind == JsonValueKind.String:
                    blocks.Add(new AnthropicContentBlock
                    {
                        Type = "thinking",
                        Thinking = detail.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String ? text.GetString() : string.Empty,
                        Signature = signature.GetString(),
                    });
                    break;
                case "reasoning.encrypted" when detail.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.String:
                    blocks.Add(new AnthropicContentBlock { Type = "redacted_thinking", Data = data.GetString() });
                    break;
                default:
                    break; // unsigned reasoning cannot be replayed to Anthropic
            }
        }
    }

    private static void AddToolUses(ChatCompletionMessage message, List<AnthropicContentBlock> blocks, int index)
    {
        if (message.ToolCalls is not { Count: > 0 } calls)
        {
            return;
        }

        for (var c = 0; c < calls.Count; c++)
        {
            var call = calls[c];
            var param = $"messages[{index}].tool_calls[{c}]";
            if (string.IsNullOrEmpty(call.Id) || string.IsNullOrEmpty(call.Function?.Name))
            {
                throw Invalid("A tool call needs an 'id' and a 'function.name'.", param);
            }

            blocks.Add(new AnthropicContentBlock { Type = "tool_use", Id = call.Id, Name = call.Function.Name, Input = ToolCallArguments.ParseObject(call.Function.Arguments, param + ".function.arguments", "Anthropic") });
        }
    }

    private static void TranslateTools(ChatCompletionRequest request, AnthropicRequest result)
    {
        if (request.Tools is { Count: > 0 } tools)
        {
            result.Tools = [];
            for (var t = 0; t < tools.Count; t++)
            {
                var tool = tools[t];
                if (tool.Type is "function" or null && tool.Function is { } function)
                {
                    if (string.IsNullOrEmpty(function.Name))
                    {
                        throw Invalid("A function tool needs a 'name'.", $"tools[{t}].function.name");
                    }

                    JsonElement? cache = tool.AdditionalProperties?.TryGetValue("cache_control", out var c1) == true ? c1
                        : function.AdditionalProperties?.TryGetValue("cache_control", out var c2) == true ? c2 : null;
                    result.Tools.Add(new AnthropicTool
                    {
                        Name = function.Name,
                        Description = function.Description,
                        InputSchema = function.Parameters is { ValueKind: JsonValueKind.Object } schema ? schema : EmptySchema,
                        CacheControl = cache,
                    });
                }
                else if (tool.Type is { Length: > 0 } type && type != "function")
                {
                    // Anthropic's own tools (web_search_20250305, bash_20250124, ...) pass through as written.
                    result.Tools.Add(new AnthropicTool { Type = type, AdditionalProperties = tool.AdditionalProperties });
                }
                else
                {
                    throw Invalid("A function tool needs a 'function' object.", $"tools[{t}].function");
                }
            }
        }

        var disableParallel = request.ParallelToolCalls == false ? true : (bool?)null;
        if (result.Tools is not { Count: > 0 })
        {
            return; // Anthropic rejects tool_choice without tools; "none" without tools means the same anyway.
        }

        if (request.ToolChoice is not { } choice || choice.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            result.ToolChoice = disableParallel is null ? null : new AnthropicToolChoice { Type = "auto", DisableParallelToolUse = true };
            return;
        }

        if (choice.ValueKind == JsonValueKind.String)
        {
            result.ToolChoice = choice.GetString() switch
            {
                "auto" => new AnthropicToolChoice { Type = "auto", DisableParallelToolUse = disableParallel },
                "required" => new AnthropicToolChoice { Type = "any", DisableParallelToolUse = disableParallel },
                "none" => new AnthropicToolChoice { Type = "none" },
                var other => throw Invalid($"'tool_choice' '{other}' is not supported; use auto, required, none or a function.", "tool_choice"),
            };
            return;
        }

        if (choice.ValueKind == JsonValueKind.Object
            && choice.TryGetProperty("function", out var fn) && fn.ValueKind == JsonValueKind.Object
            && fn.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String)
        {
            result.ToolChoice = new AnthropicToolChoice { Type = "tool", Name = name.GetString(), DisableParallelToolUse = disableParallel };
            return;
        }

        throw Invalid("'tool_choice' must be auto, required, none or {\"type\":\"function\",\"function\":{\"name\":...}}.", "tool_choice");
    }

    private static readonly JsonElement EmptySchema = ParseElement("""{"type":"object","properties":{}}""");

    private static JsonElement ParseElement(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    internal static BifrostException Invalid(string message, string? param) =>
        BifrostErrors.UnsupportedParameter(message, param);
}
