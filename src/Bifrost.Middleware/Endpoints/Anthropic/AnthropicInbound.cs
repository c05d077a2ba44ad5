using System.Text;
using Bifrost.Middleware.Providers.Anthropic;

namespace Bifrost.Middleware.Endpoints.Anthropic;

/// <summary>
/// The Anthropic-compatible inbound routes' translations, the Anthropic adapter's in reverse: a Messages request → the
/// gateway's chat request (system → a system message; text/image/document blocks → content parts; <c>tool_use</c> →
/// <c>tool_calls</c>; <c>tool_result</c> → <c>tool</c> messages ahead of the rest of the user turn; signed thinking →
/// <c>reasoning_details</c>; tools, tool_choice, stop_sequences, sampling, <c>thinking</c> → <c>reasoning_effort</c>,
/// <c>metadata.user_id</c> → <c>user</c>), and a chat answer → a Messages answer.
/// </summary>
internal static class AnthropicInbound
{
    /// <summary>The most content blocks a request may carry (system, messages and tool results together).</summary>
    internal const int MaxBlocks = 10_000;

    /// <summary>The largest <c>max_tokens</c> accepted (Anthropic's own largest output is far below it).</summary>
    internal const int MaxOutputTokens = 1_000_000;

    /// <summary>Request fields that are Anthropic's own and ride along to the provider (the Anthropic adapter forwards them).</summary>
    private static readonly string[] ForwardedFields = ["top_k", "container", "mcp_servers", "context_management", "output_format", "output_config"];

    /// <summary>
    /// The checks every Messages request passes, whichever provider serves it (the native passthrough included): a model,
    /// <c>max_tokens</c> within bounds (not for <c>count_tokens</c>), at least one message, at most <see cref="MaxBlocks"/> blocks.
    /// </summary>
    /// <returns>The turns.</returns>
    public static IList<AnthropicMessage> Check(AnthropicRequest request, bool forCounting)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (string.IsNullOrWhiteSpace(request.Model))
        {
            throw BifrostErrors.MissingParameter("'model' is required.", "model");
        }

        if (!forCounting)
        {
            if (request.MaxTokens is not { } max)
            {
                throw BifrostErrors.MissingParameter("'max_tokens' is required.", "max_tokens");
            }

            if (max is < 1 or > MaxOutputTokens)
            {
                throw BifrostErrors.InvalidValue($"'max_tokens' must be between 1 and {MaxOutputTokens}.", "max_tokens");
            }
        }

        if (request.Messages is not { Count: > 0 } turns)
        {
            throw BifrostErrors.MissingParameter("'messages' is required and must contain at least one message.", "messages");
        }

        var blocks = (request.System?.Count ?? 0) + turns.Sum(static t => (t?.Content?.Count ?? 0) + (t?.Content?.Sum(static b => b?.Content?.Count ?? 0) ?? 0));
        if (blocks > MaxBlocks)
        {
            throw BifrostErrors.TooLarge("too_many_blocks", $"A request may carry at most {MaxBlocks} content blocks; it carries {blocks}.", "messages");
        }

        return turns;
    }

    /// <summary>
    /// <see cref="Check(AnthropicRequest, bool)"/> on the caller's raw body (whichever provider serves it: the native
    /// passthrough takes blocks the typed form cannot read): a model, <c>max_tokens</c> an integer within bounds (not for
    /// <c>count_tokens</c>), a non-empty <c>messages</c> array, at most <see cref="MaxBlocks"/> content blocks.
    /// </summary>
    public static void Check(AnthropicMessagesRequest request, bool forCounting)
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = request.Body;
        if (string.IsNullOrWhiteSpace(request.Model))
        {
            throw BifrostErrors.MissingParameter("'model' is required.", "model");
        }

        if (!forCounting)
        {
            if (!body.TryGetProperty("max_tokens"u8, out var max) || max.ValueKind == JsonValueKind.Null)
            {
                throw BifrostErrors.MissingParameter("'max_tokens' is required.", "max_tokens");
            }

            if (max.ValueKind != JsonValueKind.Number || !max.TryGetInt64(out var value) || value is < 1 or > MaxOutputTokens)
            {
                throw BifrostErrors.InvalidValue($"'max_tokens' must be between 1 and {MaxOutputTokens}.", "max_tokens");
            }
        }

        if (request.Fallbacks is { Count: > Gateway.RequestValidator.MaxFallbacks } fallbacks)
        {
            throw BifrostErrors.InvalidValue($"'fallbacks' may hold at most {Gateway.RequestValidator.MaxFallbacks} models; it holds {fallbacks.Count}.", "fallbacks");
        }

        if (!body.TryGetProperty("messages"u8, out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            throw BifrostErrors.MissingParameter("'messages' is required and must contain at least one message.", "messages");
        }

        long blocks = body.TryGetProperty("system"u8, out var system) ? Blocks(system) : 0;
        foreach (var turn in messages.EnumerateArray())
        {
            if (turn.ValueKind == JsonValueKind.Object && turn.TryGetProperty("content"u8, out var content))
            {
                blocks += Blocks(content);
                if (content.ValueKind == JsonValueKind.Array)
                {
                    foreach (var block in content.EnumerateArray())
                    {
                        blocks += block.ValueKind == JsonValueKind.Object && block.TryGetProperty("content"u8, out var inner) && inner.ValueKind == JsonValueKind.Array ? inner.GetArrayLength() : 0;
                    }
                }
            }
        }

        if (blocks > MaxBlocks)
        {
            throw BifrostErrors.TooLarge("too_many_blocks", $"A request may carry at most {MaxBlocks} content blocks; it carries {blocks}.", "messages");
        }

        static int Blocks(JsonElement content) => content.ValueKind switch
        {
            JsonValueKind.Array => content.GetArrayLength(),
            JsonValueKind.String => 1,
            _ => 0,
        };
    }

    /// <summary>Translates a Messages request (or a <c>count_tokens</c> request, without <c>max_tokens</c>) into a chat request.</summary>
    public static ChatCompletionRequest ToChat(AnthropicRequest request, bool forCounting)
    {
        var turns = Check(request, forCounting);
        var chat = new ChatCompletionRequest { Model = request.Model, Messages = [] };
        if (request.System is { Count: > 0 } system)
        {
            var parts = new List<ChatContentPart>();
            for (var b = 0; b < system.Count; b++)
            {
                var block = system[b] ?? throw BifrostErrors.InvalidValue($"'system[{b}]' must not be null.", $"system[{b}]");
                if (block.Type != "text")
                {
                    throw BifrostErrors.InvalidValue($"'system[{b}].type' must be 'text'.", $"system[{b}].type");
                }

                if (!string.IsNullOrEmpty(block.Text))
                {
                    parts.Add(TextPart(block));
                }
            }

            if (parts.Count > 0)
            {
                chat.Messages.Add(ChatCompletionMessage.System(Content(parts)));
            }
        }

        for (var i = 0; i < turns.Count; i++)
        {
            var turn = turns[i] ?? throw BifrostErrors.InvalidValue($"'messages[{i}]' must not be null.", $"messages[{i}]");
            switch (turn.Role)
            {
                case "user":
                    AddUser(chat.Messages, turn, i);
                    break;
                case "assistant":
                    AddAssistant(chat.Messages, turn, i);
                    break;
                default:
                    throw BifrostErrors.InvalidValue($"'messages[{i}].role' must be 'user' or 'assistant'.", $"messages[{i}].role");
            }
        }

        AddTools(request, chat);
        if (request.Thinking is { ValueKind: JsonValueKind.Object } thinking)
        {
            chat.ReasoningEffort = Effort(thinking);
        }

        if (forCounting)
        {
            return chat;
        }

        chat.MaxTokens = request.MaxTokens;
        chat.Temperature = request.Temperature;
        chat.TopP = request.TopP;
        chat.Stop = request.StopSequences is { Count: > 0 } stops ? [.. stops] : null;
        chat.User = string.IsNullOrEmpty(request.Metadata?.UserId) ? null : request.Metadata.UserId;
        chat.ServiceTier = request.ServiceTier switch
        {
            "auto" => "auto",
            "standard_only" => "default",
            _ => null,
        };
        if (request.Stream == true)
        {
            chat.Stream = true;
            chat.StreamOptions = new ChatStreamOptions { IncludeUsage = true }; // message_delta reports the usage
        }

        if (request.AdditionalProperties is { Count: > 0 } extra)
        {
            foreach (var name in ForwardedFields)
            {
                if (extra.TryGetValue(name, out var value))
                {
                    (chat.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))[name] = value;
                }
            }
        }

        return chat;
    }

    /// <summary><c>thinking</c> → <c>reasoning_effort</c>: disabled → none; an enabled budget → minimal (≤1024), low (≤2048), medium (≤8192) or high.</summary>
    private static string? Effort(JsonElement thinking)
    {
        var type = thinking.TryGetProperty("type"u8, out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        switch (type)
        {
            case "disabled":
                return null;
            case "enabled":
                if (!thinking.TryGetProperty("budget_tokens"u8, out var b) || !b.TryGetInt32(out var budget) || budget < 1)
                {
                    throw BifrostErrors.InvalidValue("'thinking.budget_tokens' must be a positive integer.", "thinking.budget_tokens");
                }

                return budget switch
                {
                    <= 1024 => "minimal",
                    <= 2048 => "low",
                    <= 8192 => "medium",
                    _ => "high",
                };
            default:
                throw BifrostErrors.InvalidValue("'thinking.type' must be 'enabled' or 'disabled'.", "thinking.type");
        }
    }

    private static void AddUser(IList<ChatCompletionMessage> messages, AnthropicMessage turn, int index)
    {
        var parts = new List<ChatContentPart>();
        for (var b = 0; b < turn.Content.Count; b++)
        {
            var block = turn.Content[b] ?? throw BifrostErrors.InvalidValue($"'messages[{index}].content[{b}]' must not be null.", $"messages[{index}].content[{b}]");
            var param = $"messages[{index}].content[{b}]";
            switch (block.Type)
            {
                case "text":
                    if (!string.IsNullOrEmpty(block.Text))
                    {
                        parts.Add(TextPart(block));
                    }

                    break;
                case "image":
                case "document":
                    parts.Add(MediaPart(block, param));
                    break;
                case "tool_result":
                    if (string.IsNullOrEmpty(block.ToolUseId))
                    {
                        throw BifrostErrors.MissingParameter($"'{param}.tool_use_id' is required.", param + ".tool_use_id");
                    }

                    // Anthropic puts tool results first in the user turn; chat wants them as tool messages right after the call.
                    messages.Add(ChatCompletionMessage.Tool(block.ToolUseId, ToolResultContent(block, param)));
                    break;
                default:
                    throw BifrostErrors.InvalidValue($"Content block type '{block.Type}' is not supported in a user message.", param + ".type");
            }
        }

        if (parts.Count > 0)
        {
            messages.Add(ChatCompletionMessage.User(Content(parts)));
        }
    }

    private static void AddAssistant(IList<ChatCompletionMessage> messages, AnthropicMessage turn, int index)
    {
        var text = new StringBuilder();
        List<ChatCompletionToolCall>? calls = null;
        List<AnthropicReasoningDetail>? details = null;
        for (var b = 0; b < turn.Content.Count; b++)
        {
            var block = turn.Content[b] ?? throw BifrostErrors.InvalidValue($"'messages[{index}].content[{b}]' must not be null.", $"messages[{index}].content[{b}]");
            var param = $"messages[{index}].content[{b}]";
            switch (block.Type)
            {
                case "text":
                    text.Append(block.Text);
                    break;
                case "tool_use":
                    if (string.IsNullOrEmpty(block.Id) || string.IsNullOrEmpty(block.Name))
                    {
                        throw BifrostErrors.MissingParameter($"A tool_use block needs an 'id' and a 'name'.", param);
                    }

                    (calls ??= []).Add(new ChatCompletionToolCall
                    {
                        Id = block.Id,
                        Type = "function",
                        Function = new ChatCompletionFunctionCall { Name = block.Name, Arguments = block.Input is { ValueKind: JsonValueKind.Object } input ? input.GetRawText() : "{}" },
                    });
                    break;
                case "thinking":
                    (details ??= []).Add(new AnthropicReasoningDetail { Type = "reasoning.text", Text = block.Thinking ?? string.Empty, Signature = block.Signature, Format = AnthropicResponseTranslator.ReasoningFormat, Index = details.Count });
                    break;
                case "redacted_thinking":
                    (details ??= []).Add(new AnthropicReasoningDetail { Type = "reasoning.encrypted", Data = block.Data, Format = AnthropicResponseTranslator.ReasoningFormat, Index = details.Count });
                    break;
                default:
                    throw BifrostErrors.InvalidValue($"Content block type '{block.Type}' is not supported in an assistant message.", param + ".type");
            }
        }

        if (text.Length == 0 && calls is null && details is null)
        {
            return; // an empty turn carries nothing
        }

        var message = new ChatCompletionMessage { Role = "assistant", Content = text.Length > 0 || calls is null ? new ChatCompletionContent(text.ToString()) : null, ToolCalls = calls };
        if (details is not null)
        {
            message.AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            AnthropicResponseTranslator.AddReasoning(message.AdditionalProperties, null, details);
        }

        messages.Add(message);
    }

    private static ChatCompletionContent ToolResultContent(AnthropicContentBlock block, string param)
    {
        var parts = new List<ChatContentPart>();
        var results = block.Content ?? [];
        for (var r = 0; r < results.Count; r++)
        {
            var item = results[r] ?? throw BifrostErrors.InvalidValue($"'{param}.content[{r}]' must not be null.", $"{param}.content[{r}]");
            switch (item.Type)
            {
                case "text":
                    parts.Add(TextPart(item));
                    break;
                case "image" or "document":
                    parts.Add(MediaPart(item, $"{param}.content[{r}]"));
                    break;
                default:
                    throw BifrostErrors.InvalidValue($"Content block type '{item.Type}' is not supported in a tool_result.", $"{param}.content[{r}].type");
            }
        }

        return parts.Count == 0 ? new ChatCompletionContent(string.Empty) : Content(parts);
    }

    /// <summary>A single plain text part becomes a string (what every provider takes); otherwise the parts.</summary>
    private static ChatCompletionContent Content(List<ChatContentPart> parts) =>
        parts is [{ Type: "text", AdditionalProperties: null, Text: { } only }] ? new ChatCompletionContent(only) : new ChatCompletionContent(parts);

    private static ChatContentPart TextPart(AnthropicContentBlock block)
    {
        var part = new ChatContentPart { Type = "text", Text = block.Text ?? string.Empty };
        if (block.CacheControl is { ValueKind: JsonValueKind.Object } cache)
        {
            part.AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal) { ["cache_control"] = cache };
        }

        return part;
    }

    /// <summary>An image (base64 → a data URL, url → the URL) or a base64 document (→ a file part with inline <c>file_data</c>).</summary>
    private static ChatContentPart MediaPart(AnthropicContentBlock block, string param)
    {
        var source = block.Source ?? throw BifrostErrors.MissingParameter($"'{param}.source' is required.", param + ".source");
        ChatContentPart part;
        switch (source.Type)
        {
            case "base64":
                if (string.IsNullOrEmpty(source.MediaType) || string.IsNullOrEmpty(source.Data))
                {
                    throw BifrostErrors.MissingParameter($"A base64 source needs 'media_type' and 'data'.", param + ".source");
                }

                var dataUrl = "data:" + source.MediaType + ";base64," + source.Data;
                part = block.Type == "image"
                    ? new ChatContentPart { Type = "image_url", ImageUrl = new ChatImageUrl { Url = dataUrl } }
                    : new ChatContentPart { Type = "file", AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal) { ["file"] = FileData(dataUrl) } };
                break;
            case "url" when block.Type == "image":
                if (string.IsNullOrEmpty(source.Url))
                {
                    throw BifrostErrors.MissingParameter("A url source needs 'url'.", param + ".source.url");
                }

                part = new ChatContentPart { Type = "image_url", ImageUrl = new ChatImageUrl { Url = source.Url } };
                break;
            default:
                throw BifrostErrors.InvalidValue($"Source type '{source.Type}' is not supported for a {block.Type} block here (use base64{(block.Type == "image" ? " or url" : string.Empty)}).", param + ".source.type");
        }

        if (block.CacheControl is { ValueKind: JsonValueKind.Object } cache)
        {
            (part.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))["cache_control"] = cache;
        }

        return part;
    }

    private static JsonElement FileData(string dataUrl)
    {
        using var buffer = new PooledBufferWriter();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("file_data"u8, dataUrl);
            writer.WriteEndObject();
        }

        var reader = new Utf8JsonReader(buffer.WrittenMemory.Span);
        return JsonElement.ParseValue(ref reader);
    }

    private static void AddTools(AnthropicRequest request, ChatCompletionRequest chat)
    {
        if (request.Tools is { Count: > 0 } tools)
        {
            chat.Tools = [];
            for (var t = 0; t < tools.Count; t++)
            {
                var tool = tools[t] ?? throw BifrostErrors.InvalidValue($"'tools[{t}]' must not be null.", $"tools[{t}]");
                if (string.IsNullOrEmpty(tool.Name))
                {
                    throw BifrostErrors.MissingParameter($"'tools[{t}].name' is required.", $"tools[{t}].name");
                }

                if (tool.Type is null or "custom")
                {
                    var function = new ChatFunctionDefinition { Name = tool.Name, Description = tool.Description, Parameters = tool.InputSchema };
                    var chatTool = new ChatCompletionTool { Type = "function", Function = function };
                    if (tool.CacheControl is { ValueKind: JsonValueKind.Object } cache)
                    {
                        chatTool.AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal) { ["cache_control"] = cache };
                    }

                    chat.Tools.Add(chatTool);
                }
                else
                {
                    // Anthropic's server tools (web_search_20250305, bash_20250124, ...) ride along as written; the Anthropic adapter sends them back.
                    var fields = new Dictionary<string, JsonElement>(tool.AdditionalProperties ?? new Dictionary<string, JsonElement>(), StringComparer.Ordinal)
                    {
                        ["name"] = JsonSerializer.SerializeToElement(tool.Name, AnthropicJsonContext.Wire.String),
                    };
                    chat.Tools.Add(new ChatCompletionTool { Type = tool.Type, AdditionalProperties = fields });
                }
            }
        }

        if (request.ToolChoice is not { } choice)
        {
            return;
        }

        if (choice.DisableParallelToolUse == true)
        {
            chat.ParallelToolCalls = false;
        }

        var json = choice.Type switch
        {
            "auto" => "\"auto\"",
            "any" => "\"required\"",
            "none" => "\"none\"",
            "tool" when !string.IsNullOrEmpty(choice.Name) => "{\"type\":\"function\",\"function\":{\"name\":" + JsonSerializer.Serialize(choice.Name, AnthropicJsonContext.Wire.String) + "}}",
            "tool" => throw BifrostErrors.MissingParameter("'tool_choice.name' is required with type 'tool'.", "tool_choice.name"),
            _ => throw BifrostErrors.InvalidValue("'tool_choice.type' must be auto, any, tool or none.", "tool_choice.type"),
        };
        using var document = JsonDocument.Parse(json);
        chat.ToolChoice = document.RootElement.Clone();
    }

    /// <summary>A chat answer → a Messages answer: thinking first, then text, then tool_use blocks; finish reason → stop reason; usage split back into Anthropic's input / cache counts.</summary>
    public static AnthropicResponse FromChat(ChatCompletionResponse response, string requestedModel, IList<string>? stopSequences)
    {
        ArgumentNullException.ThrowIfNull(response);
        var choice = response.Choices.Count > 0 ? response.Choices[0] : null;
        var message = choice?.Message;
        var content = new List<AnthropicContentBlock>();
        AddThinking(message?.AdditionalProperties, content);
        if (!string.IsNullOrEmpty(message?.Content))
        {
            content.Add(new AnthropicContentBlock { Type = "text", Text = message.Content });
        }
        else if (!string.IsNullOrEmpty(message?.Refusal))
        {
            content.Add(new AnthropicContentBlock { Type = "text", Text = message.Refusal });
        }

        foreach (var call in message?.ToolCalls ?? [])
        {
            content.Add(ToolUse(call.Id, call.Function?.Name, ToolInput(call.Function?.Arguments)));
        }

        var (stopReason, stopSequence) = StopReason(choice?.FinishReason, choice?.AdditionalProperties, stopSequences);
        return new AnthropicResponse
        {
            Id = MessageId(response.Id),
            Type = "message",
            Role = "assistant",
            Model = response.Model ?? requestedModel,
            Content = content,
            StopReason = stopReason,
            StopSequence = stopSequence,
            Usage = Usage(response.Usage),
        };
    }

    /// <summary>An id that looks like Anthropic's: the provider's own <c>msg_</c> id, else <c>msg_</c> + the chat id.</summary>
    public static string MessageId(string? id) =>
        string.IsNullOrEmpty(id) ? "msg_" + Guid.NewGuid().ToString("N") : id.StartsWith("msg_", StringComparison.Ordinal) ? id : "msg_" + id;

    /// <summary>
    /// stop/end → <c>end_turn</c> (or <c>stop_sequence</c> when the provider says which of the request's sequences matched,
    /// as vLLM's <c>stop_reason</c> does), length → <c>max_tokens</c>, tool_calls/function_call → <c>tool_use</c>,
    /// content_filter → <c>refusal</c>.
    /// </summary>
    public static (string StopReason, string? StopSequence) StopReason(string? finishReason, IDictionary<string, JsonElement>? choiceFields, IList<string>? stopSequences)
    {
        switch (finishReason)
        {
            case "length":
                return ("max_tokens", null);
            case "tool_calls" or "function_call":
                return ("tool_use", null);
            case "content_filter":
                return ("refusal", null);
            default:
                foreach (var name in (ReadOnlySpan<string>)["stop_sequence", "stop_reason"])
                {
                    if (choiceFields?.TryGetValue(name, out var matched) == true && matched.ValueKind == JsonValueKind.String
                        && matched.GetString() is { } sequence && stopSequences?.Contains(sequence) == true)
                    {
                        return ("stop_sequence", sequence);
                    }
                }

                return ("end_turn", null);
        }
    }

    /// <summary>OpenAI's prompt tokens include the cached ones; Anthropic's <c>input_tokens</c> exclude the cache reads and writes.</summary>
    public static AnthropicUsage Usage(ChatUsage? usage)
    {
        if (usage is null)
        {
            return new AnthropicUsage { InputTokens = 0, OutputTokens = 0 };
        }

        var cached = Number(usage.PromptTokensDetails, "cached_tokens"u8);
        var written = Number(usage.PromptTokensDetails, "cache_creation_tokens"u8);
        return new AnthropicUsage
        {
            InputTokens = Math.Max(0, usage.PromptTokens - cached - written),
            OutputTokens = usage.CompletionTokens,
            CacheCreationInputTokens = written,
            CacheReadInputTokens = cached,
        };

        static int Number(JsonElement? details, ReadOnlySpan<byte> name) =>
            details is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty(name, out var value) && value.TryGetInt32(out var n) ? n : 0;
    }

    /// <summary>Tool arguments → the <c>input</c> object (arguments that are not a JSON object are wrapped as <c>{"arguments": "..."}</c>).</summary>
    public static JsonElement ToolInput(string? arguments)
    {
        if (!string.IsNullOrWhiteSpace(arguments))
        {
            try
            {
                using var document = JsonDocument.Parse(arguments);
                if (document.RootElement.ValueKind == JsonValueKind.Object)
                {
                    return document.RootElement.Clone();
                }
            }
            catch (JsonException)
            {
                // not JSON: wrapped below
            }

            using var wrapped = JsonDocument.Parse("{\"arguments\":" + JsonSerializer.Serialize(arguments, AnthropicJsonContext.Wire.String) + "}");
            return wrapped.RootElement.Clone();
        }

        return EmptyObject;
    }

    internal static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    /// <summary>The <c>caller</c> Anthropic puts on every tool_use block it answers (the model called the tool itself).</summary>
    private static readonly JsonElement DirectCaller = JsonDocument.Parse("""{"type":"direct"}""").RootElement.Clone();

    /// <summary>A <c>tool_use</c> block as Anthropic answers it, with <c>caller: {"type":"direct"}</c> (current SDKs require it).</summary>
    internal static AnthropicContentBlock ToolUse(string? id, string? name, JsonElement input) => new()
    {
        Type = "tool_use",
        Id = id,
        Name = name,
        Input = input,
        AdditionalProperties = new Dictionary<string, JsonElement>(StringComparer.Ordinal) { ["caller"] = DirectCaller },
    };

    /// <summary>Signed thinking (<c>reasoning_details</c>) → thinking / redacted_thinking blocks; plain <c>reasoning</c> text → a thinking block without a signature.</summary>
    private static void AddThinking(IDictionary<string, JsonElement>? fields, List<AnthropicContentBlock> content)
    {
        if (fields is null)
        {
            return;
        }

        if (fields.TryGetValue("reasoning_details", out var details) && details.ValueKind == JsonValueKind.Array)
        {
            foreach (var detail in details.EnumerateArray())
            {
                if (ThinkingBlock(detail) is { } block)
                {
                    content.Add(block);
                }
            }

            if (content.Count > 0)
            {
                return;
            }
        }

        foreach (var name in (ReadOnlySpan<string>)["reasoning", "reasoning_content"])
        {
            if (fields.TryGetValue(name, out var text) && text.ValueKind == JsonValueKind.String && text.GetString() is { Length: > 0 } thinking)
            {
                content.Add(new AnthropicContentBlock { Type = "thinking", Thinking = thinking, Signature = string.Empty });
                return;
            }
        }
    }

    internal static AnthropicContentBlock? ThinkingBlock(JsonElement detail)
    {
        if (detail.ValueKind != JsonValueKind.Object || !detail.TryGetProperty("type"u8, out var type))
        {
            return null;
        }

        return type.ValueEquals("reasoning.text"u8)
            ? new AnthropicContentBlock { Type = "thinking", Thinking = Text(detail, "text"u8) ?? string.Empty, Signature = Text(detail, "signature"u8) ?? string.Empty }
            : type.ValueEquals("reasoning.encrypted"u8) ? new AnthropicContentBlock { Type = "redacted_thinking", Data = Text(detail, "data"u8) ?? string.Empty }
            : null;

        static string? Text(JsonElement element, ReadOnlySpan<byte> name) =>
            element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
    }

    /// <summary>
    /// A gateway error in Anthropic's envelope and status: 400 invalid_request_error, 401 authentication_error, 402
    /// billing_error, 403 permission_error, 404 not_found_error, 413 request_too_large, 429 rate_limit_error, 529 and
    /// 503 overloaded_error, 504 timeout_error, any other 5xx api_error; other 4xx are invalid_request_error.
    /// </summary>
    /// <remarks>An error whose type is already Anthropic's for its status (an upstream Anthropic error) keeps it.</remarks>
    public static AnthropicErrorResponse Error(BifrostException exception) => new()
    {
        Type = "error",
        Error = new AnthropicErrorDetail
        {
            Type = exception.Error.Error.Type is { } type && AnthropicTypes.Contains(type) && AnthropicResponseTranslator.StatusOf(type) == exception.StatusCode ? type : ErrorType(exception.StatusCode),
            Message = string.IsNullOrEmpty(exception.Error.Error.Message) ? exception.Message : exception.Error.Error.Message,
        },
    };

    private static readonly HashSet<string> AnthropicTypes = new(StringComparer.Ordinal)
    {
        "invalid_request_error", "authentication_error", "billing_error", "permission_error", "not_found_error", "request_too_large",
        "rate_limit_error", "timeout_error", "api_error", "overloaded_error",
    };

    public static string ErrorType(int status) => status switch
    {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 or 529 => "overloaded_error",
        504 => "timeout_error",
        >= 500 => "api_error",
        _ => "invalid_request_error",
    };
}
