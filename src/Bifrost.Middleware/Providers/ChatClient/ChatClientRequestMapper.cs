using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Providers.ChatClient;

/// <summary>
/// Turns the gateway's OpenAI-shaped chat request into Microsoft.Extensions.AI messages and <see cref="AI.ChatOptions"/>.
/// What has no counterpart in the abstraction either travels in <see cref="AI.ChatOptions.AdditionalProperties"/> under its
/// wire name (so an <see cref="AI.IChatClient"/> that knows it can use it) or, when the answer could not be shaped faithfully
/// (<c>n</c> &gt; 1, non-function tools, unknown content parts), is refused with a 400.
/// </summary>
internal static class ChatClientRequestMapper
{
    /// <summary>The key of a function tool's or a JSON schema's <c>strict</c> flag (the one Microsoft.Extensions.AI.OpenAI reads).</summary>
    internal const string StrictKey = "strict";

    /// <summary>The key of an image part's <c>detail</c> (the one Microsoft.Extensions.AI.OpenAI reads).</summary>
    internal const string DetailKey = "detail";

    /// <summary>The <see cref="AI.ErrorContent.ErrorCode"/> Microsoft.Extensions.AI uses for a model's refusal.</summary>
    internal const string RefusalErrorCode = "Refusal";

    public static List<AI.ChatMessage> ToMessages(ChatCompletionRequest request)
    {
        var source = request.Messages ?? [];
        var messages = new List<AI.ChatMessage>(source.Count);
        for (var i = 0; i < source.Count; i++)
        {
            messages.Add(ToMessage(source[i], i));
        }

        return messages;
    }

    public static AI.ChatOptions ToOptions(ProviderContext context, ChatCompletionRequest request)
    {
        if (request.N is > 1)
        {
            throw Invalid("unsupported_parameter", $"Provider '{context.ProviderName}' (an IChatClient) produces one choice per request; 'n' must be 1.", "n");
        }

        var options = new AI.ChatOptions
        {
            ModelId = context.Model,
            Temperature = (float?)request.Temperature,
            TopP = (float?)request.TopP,
            MaxOutputTokens = request.MaxCompletionTokens ?? request.MaxTokens,
            Seed = request.Seed,
            PresencePenalty = (float?)request.PresencePenalty,
            FrequencyPenalty = (float?)request.FrequencyPenalty,
            AllowMultipleToolCalls = request.ParallelToolCalls,
        };

        if (request.Stop is { Count: > 0 } stop)
        {
            options.StopSequences = [.. stop];
        }

        if (request.Tools is { Count: > 0 } tools)
        {
            options.Tools = [.. tools.Select(ToTool)];
        }

        if (request.ToolChoice is { } toolChoice)
        {
            options.ToolMode = ToToolMode(toolChoice);
        }

        AI.AdditionalPropertiesDictionary? extra = null;
        void Extra(string key, object? value) => (extra ??= [])[key] = value;

        if (request.ResponseFormat is { } format)
        {
            options.ResponseFormat = ToResponseFormat(format, out var strict);
            if (strict is { } isStrict)
            {
                Extra(StrictKey, isStrict);
            }
        }

        if (request.ReasoningEffort is { } effort)
        {
            var mapped = ToReasoningEffort(effort);
            if (mapped is { } value)
            {
                options.Reasoning = new AI.ReasoningOptions { Effort = value };
            }

            if (mapped is null || string.Equals(effort, "minimal", StringComparison.OrdinalIgnoreCase))
            {
                Extra("reasoning_effort", effort); // "minimal" (mapped to Low) or a value the abstraction does not name
            }
        }

        // OpenAI fields with no ChatOptions property: under their wire names, as plain .NET values.
        if (request.Logprobs is { } logprobs)
        {
            Extra("logprobs", logprobs);
        }

        if (request.TopLogprobs is { } topLogprobs)
        {
            Extra("top_logprobs", topLogprobs);
        }

        if (request.LogitBias is { Count: > 0 } logitBias)
        {
            Extra("logit_bias", new Dictionary<string, double>(logitBias, StringComparer.Ordinal));
        }

        if (request.User is { } user)
        {
            Extra("user", user);
        }

        if (request.Metadata is { Count: > 0 } metadata)
        {
            Extra("metadata", new Dictionary<string, string>(metadata, StringComparer.Ordinal));
        }

        if (request.Store is { } store)
        {
            Extra("store", store);
        }

        if (request.ServiceTier is { } serviceTier)
        {
            Extra("service_tier", serviceTier);
        }

        // Fields the gateway does not model at all (modalities, audio, prediction, web_search_options, ...): as JSON.
        if (request.AdditionalProperties is { Count: > 0 } unknown)
        {
            foreach (var (key, value) in unknown)
            {
                Extra(key, value);
            }
        }

        options.AdditionalProperties = extra;
        return options;
    }

    private static AI.ChatMessage ToMessage(ChatCompletionMessage message, int index)
    {
        var role = message.Role switch
        {
            "system" or "developer" => AI.ChatRole.System, // few IChatClients know "developer"; OpenAI treats system as developer
            "user" => AI.ChatRole.User,
            "assistant" => AI.ChatRole.Assistant,
            "tool" or "function" => AI.ChatRole.Tool,
            null or "" => throw Invalid("invalid_value", $"messages[{index}].role is required.", $"messages[{index}].role"),
            var other => new AI.ChatRole(other),
        };

        var contents = new List<AI.AIContent>();
        if (role == AI.ChatRole.Tool)
        {
            // A tool (or legacy function) result answers the call it names; its content is the result, as text.
            var callId = message.ToolCallId ?? message.Name
                ?? throw Invalid("missing_required_parameter", $"messages[{index}].tool_call_id is required for a tool message.", $"messages[{index}].tool_call_id");
            contents.Add(new AI.FunctionResultContent(callId, message.Content?.GetText() ?? string.Empty));
        }
        else if (message.Content is { } content)
        {
            if (content.Text is { } text)
            {
                if (text.Length > 0 || message.ToolCalls is not { Count: > 0 })
                {
                    contents.Add(new AI.TextContent(text));
                }
            }
            else
            {
                for (var p = 0; p < content.Parts!.Count; p++)
                {
                    contents.Add(ToContent(content.Parts[p], $"messages[{index}].content[{p}]"));
                }
            }
        }

        if (message.Refusal is { } refusal)
        {
            contents.Add(new AI.ErrorContent(refusal) { ErrorCode = RefusalErrorCode });
        }

        if (message.ToolCalls is { Count: > 0 } calls)
        {
            for (var c = 0; c < calls.Count; c++)
            {
                contents.Add(ToFunctionCall(calls[c], $"messages[{index}].tool_calls[{c}]"));
            }
        }

        var result = new AI.ChatMessage(role, contents) { AuthorName = role == AI.ChatRole.Tool ? null : message.Name };
        if (message.AdditionalProperties is { Count: > 0 } unknown)
        {
            result.AdditionalProperties = [];
            foreach (var (key, value) in unknown)
            {
                result.AdditionalProperties[key] = value;
            }
        }

        return result;
    }

    private static AI.AIContent ToContent(ChatContentPart part, string param)
    {
        switch (part.Type)
        {
            case "text":
                return new AI.TextContent(part.Text ?? string.Empty);
            case "image_url":
                return ToImage(part.ImageUrl, param);
            case "input_audio" when Property(part, "input_audio") is { ValueKind: JsonValueKind.Object } audio:
                {
                    var data = String(audio, "data") ?? throw Invalid("missing_required_parameter", $"{param}.input_audio.data is required.", param);
                    var format = String(audio, "format") ?? "wav";
                    var mediaType = format switch
                    {
                        "mp3" => "audio/mpeg",
                        _ => "audio/" + format,
                    };
                    return Guard(() => new AI.DataContent(Convert.FromBase64String(data), mediaType), param, "input_audio.data must be base64 audio");
                }

            case "file" when Property(part, "file") is { ValueKind: JsonValueKind.Object } file:
                {
                    var name = String(file, "filename");
                    if (String(file, "file_data") is { } fileData)
                    {
                        var dataContent = fileData.StartsWith("data:", StringComparison.OrdinalIgnoreCase)
                            ? Guard(() => new AI.DataContent(fileData), param, "file.file_data is not a valid data: URI")
                            : Guard(() => new AI.DataContent(Convert.FromBase64String(fileData), "application/pdf"), param, "file.file_data must be base64 or a data: URI");
                        dataContent.Name = name;
                        return dataContent;
                    }

                    if (String(file, "file_id") is { } fileId)
                    {
                        return new AI.HostedFileContent(fileId) { Name = name };
                    }

                    throw Invalid("missing_required_parameter", $"{param}.file needs file_data or file_id.", param);
                }

            case "refusal":
                return new AI.ErrorContent(part.AdditionalProperties is { } extra && extra.TryGetValue("refusal", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null)
                {
                    ErrorCode = RefusalErrorCode,
                };
            default:
                throw Invalid("unsupported_content", $"{param}: content part type '{part.Type}' cannot be passed to an IChatClient.", param);
        }
    }

    private static AI.AIContent ToImage(ChatImageUrl? image, string param)
    {
        var url = image?.Url;
        if (string.IsNullOrEmpty(url))
        {
            throw Invalid("missing_required_parameter", $"{param}.image_url.url is required.", param);
        }

        AI.AIContent content;
        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            content = Guard(() => new AI.DataContent(url), param, "image_url.url is not a valid data: URI");
        }
        else if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
        {
            content = new AI.UriContent(uri, ImageMediaType(uri));
        }
        else
        {
            throw Invalid("invalid_value", $"{param}.image_url.url must be an http(s) URL or a data: URI.", param);
        }

        if (image!.Detail is { } detail)
        {
            content.AdditionalProperties = new() { [DetailKey] = detail };
        }

        return content;
    }

    /// <summary>The image's media type from its extension, else <c>image/*</c> (an image of unknown format).</summary>
    private static string ImageMediaType(Uri uri) => Path.GetExtension(uri.AbsolutePath).ToUpperInvariant() switch
    {
        ".PNG" => "image/png",
        ".JPG" or ".JPEG" => "image/jpeg",
        ".GIF" => "image/gif",
        ".WEBP" => "image/webp",
        _ => "image/*",
    };

    private static AI.FunctionCallContent ToFunctionCall(ChatCompletionToolCall call, string param)
    {
        if (call.Type is not (null or "function"))
        {
            throw Invalid("unsupported_tool_type", $"{param}: tool call type '{call.Type}' cannot be passed to an IChatClient.", param);
        }

        var name = call.Function?.Name;
        if (string.IsNullOrEmpty(call.Id) || string.IsNullOrEmpty(name))
        {
            throw Invalid("missing_required_parameter", $"{param} needs an id and a function name.", param);
        }

        // Malformed arguments (a model's own invalid JSON, replayed) do not fail the request: the content records the parse error.
        var arguments = call.Function!.Arguments;
        return AI.FunctionCallContent.CreateFromParsedArguments(
            string.IsNullOrWhiteSpace(arguments) ? "{}" : arguments,
            call.Id,
            name,
            static json => ParseArguments(json));
    }

    internal static Dictionary<string, object?>? ParseArguments(string json)
    {
        using var document = JsonDocument.Parse(json);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw new JsonException("Function arguments must be a JSON object.");
        }

        var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var property in document.RootElement.EnumerateObject())
        {
            arguments[property.Name] = property.Value.Clone();
        }

        return arguments;
    }

    private static AI.AITool ToTool(ChatCompletionTool tool, int index)
    {
        if (tool.Type is not (null or "function") || tool.Function is null)
        {
            throw Invalid("unsupported_tool_type", $"tools[{index}]: tool type '{tool.Type}' cannot be passed to an IChatClient; only function tools can.", $"tools[{index}].type");
        }

        var function = tool.Function;
        if (string.IsNullOrEmpty(function.Name))
        {
            throw Invalid("missing_required_parameter", $"tools[{index}].function.name is required.", $"tools[{index}].function.name");
        }

        return new FunctionDeclaration(function.Name, function.Description, function.Parameters, function.Strict);
    }

    private static AI.ChatToolMode ToToolMode(JsonElement choice)
    {
        if (choice.ValueKind == JsonValueKind.String)
        {
            return choice.GetString() switch
            {
                "none" => AI.ChatToolMode.None,
                "auto" => AI.ChatToolMode.Auto,
                "required" => AI.ChatToolMode.RequireAny,
                var other => throw Invalid("invalid_value", $"tool_choice '{other}' is not one of none, auto, required.", "tool_choice"),
            };
        }

        if (choice.ValueKind == JsonValueKind.Object
            && String(choice, "type") == "function"
            && Property(choice, "function") is { ValueKind: JsonValueKind.Object } function
            && String(function, "name") is { Length: > 0 } name)
        {
            return AI.ChatToolMode.RequireSpecific(name);
        }

        if (choice.ValueKind == JsonValueKind.Null)
        {
            return AI.ChatToolMode.Auto;
        }

        throw Invalid("unsupported_parameter", "tool_choice must be none, auto, required or a function ({\"type\":\"function\",\"function\":{\"name\":...}}) for an IChatClient.", "tool_choice");
    }

    private static AI.ChatResponseFormat ToResponseFormat(ChatCompletionResponseFormat format, out bool? strict)
    {
        strict = null;
        switch (format.Type)
        {
            case "text":
                return AI.ChatResponseFormat.Text;
            case "json_object":
                return AI.ChatResponseFormat.Json;
            case "json_schema":
                var schema = format.JsonSchema;
                strict = schema?.Strict;
                return schema?.Schema is { ValueKind: JsonValueKind.Object } json
                    ? AI.ChatResponseFormat.ForJsonSchema(json, schema.Name, schema.Description)
                    : new AI.ChatResponseFormatJson(null, schema?.Name, schema?.Description);
            default:
                throw Invalid("invalid_value", $"response_format type '{format.Type}' is not one of text, json_object, json_schema.", "response_format.type");
        }
    }

    private static AI.ReasoningEffort? ToReasoningEffort(string effort) => effort.ToUpperInvariant() switch
    {
        "NONE" => AI.ReasoningEffort.None,
        "MINIMAL" or "LOW" => AI.ReasoningEffort.Low,
        "MEDIUM" => AI.ReasoningEffort.Medium,
        "HIGH" => AI.ReasoningEffort.High,
        "XHIGH" => AI.ReasoningEffort.ExtraHigh,
        _ => null,
    };

    private static T Guard<T>(Func<T> create, string param, string what)
    {
        try
        {
            return create();
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or UriFormatException)
        {
            throw Invalid("invalid_value", $"{param}: {what}.", param);
        }
    }

    private static JsonElement? Property(ChatContentPart part, string name) =>
        part.AdditionalProperties is { } extra && extra.TryGetValue(name, out var value) ? value : null;

    private static JsonElement? Property(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) ? value : null;

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    internal static BifrostException Invalid(string code, string message, string? param) =>
        BifrostErrors.InvalidRequest(code, message, param);

    /// <summary>A function tool as the request declares it: name, description, the JSON schema as sent, and <c>strict</c>.</summary>
    private sealed class FunctionDeclaration : AI.AIFunctionDeclaration
    {
        private static readonly JsonElement EmptyObjectSchema = JsonSerializer.SerializeToElement(
            new System.Text.Json.Nodes.JsonObject { ["type"] = "object", ["properties"] = new System.Text.Json.Nodes.JsonObject() },
            BifrostJsonContext.Default.JsonNode);

        private readonly IReadOnlyDictionary<string, object?> _additionalProperties;

        public FunctionDeclaration(string name, string? description, JsonElement? parameters, bool? strict)
        {
            Name = name;
            Description = description ?? string.Empty;
            JsonSchema = parameters is { ValueKind: JsonValueKind.Object } schema ? schema : EmptyObjectSchema;
            _additionalProperties = strict is { } value
                ? new Dictionary<string, object?>(StringComparer.Ordinal) { [StrictKey] = value }
                : new Dictionary<string, object?>(StringComparer.Ordinal);
        }

        public override string Name { get; }

        public override string Description { get; }

        public override JsonElement JsonSchema { get; }

        public override IReadOnlyDictionary<string, object?> AdditionalProperties => _additionalProperties;
    }
}
