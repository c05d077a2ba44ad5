using System.Globalization;

namespace Bifrost.Middleware.Providers.Gemini;

/// <summary>
/// Chat completions request → Gemini <c>generateContent</c> request (https://ai.google.dev/api/generate-content):
/// system/developer messages → <c>systemInstruction</c>; user parts → text / <c>inlineData</c> (data URLs, audio) /
/// <c>fileData</c> (Gemini Files API, <c>gs://</c> and YouTube URIs); assistant → role <c>model</c> with
/// <c>tool_calls</c> → <c>functionCall</c> parts (their thought signature sent back); <c>tool</c> messages →
/// <c>functionResponse</c> parts named after the call they answer; consecutive turns of one role are merged; function tools →
/// one <c>functionDeclarations</c> list (<c>parametersJsonSchema</c>); <c>tool_choice</c> → <c>functionCallingConfig</c>;
/// sampling and limits → <c>generationConfig</c>; <c>response_format</c> → <c>responseMimeType</c> /
/// <c>responseJsonSchema</c>; <c>reasoning_effort</c> → <c>thinkingConfig</c>. What Gemini cannot take (logprobs, other
/// image URLs, uploaded OpenAI file ids, non-function tools) is refused with a 400; <c>logit_bias</c>, <c>user</c> and
/// <c>parallel_tool_calls</c> have no equivalent and are not sent.
/// </summary>
internal static class GeminiRequestTranslator
{
    /// <summary>The signature Google documents for function calls in a history Gemini did not produce (https://ai.google.dev/gemini-api/docs/thought-signatures).</summary>
    public const string SkipSignature = "skip_thought_signature_validator";

    /// <summary>The thinking budget for a <c>reasoning_effort</c>: none → 0 (off), minimal 1024, low 2048, medium 8192, high 24576 tokens.</summary>
    public static int? ThinkingBudget(string? effort) => effort switch
    {
        null => null,
        "none" => 0,
        "minimal" => 1024,
        "low" => 2048,
        "medium" => 8192,
        "high" => 24576,
        _ => throw Invalid($"'reasoning_effort' '{effort}' is not supported by Gemini; use none, minimal, low, medium or high.", "reasoning_effort"),
    };

    /// <summary>Translates a chat request.</summary>
    /// <param name="request">The chat request (bare model).</param>
    /// <param name="defaultMaxTokens">maxOutputTokens when the request has none (null: Gemini's default).</param>
    /// <param name="forCounting">For countTokens: only contents, system instruction and tools.</param>
    public static GeminiRequest Translate(ChatCompletionRequest request, int? defaultMaxTokens, bool forCounting = false)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Messages is not { Count: > 0 } messages)
        {
            throw Invalid("'messages' is required and must contain at least one message.", "messages");
        }

        if (request.Logprobs == true || request.TopLogprobs is not null)
        {
            throw Invalid("'logprobs' is not supported by the Gemini adapter.", "logprobs");
        }

        var result = new GeminiRequest();
        TranslateMessages(messages, result);
        TranslateTools(request, result);
        if (forCounting)
        {
            result.ToolConfig = null;
            return result;
        }

        var config = new GeminiGenerationConfig
        {
            Temperature = request.Temperature,
            TopP = request.TopP,
            CandidateCount = request.N is > 1 ? request.N : null,
            MaxOutputTokens = request.MaxCompletionTokens ?? request.MaxTokens ?? defaultMaxTokens,
            StopSequences = request.Stop is { Count: > 0 } stop ? [.. stop] : null,
            PresencePenalty = request.PresencePenalty,
            FrequencyPenalty = request.FrequencyPenalty,
        };
        if (request.Seed is { } seed)
        {
            config.Seed = seed is >= int.MinValue and <= int.MaxValue ? (int)seed : throw Invalid("'seed' must be a 32-bit integer for Gemini.", "seed");
        }

        switch (request.ResponseFormat?.Type)
        {
            case null or "text":
                break;
            case "json_object":
                config.ResponseMimeType = "application/json";
                break;
            case "json_schema":
                config.ResponseMimeType = "application/json";
                config.ResponseJsonSchema = request.ResponseFormat.JsonSchema?.Schema is { ValueKind: JsonValueKind.Object } schema
                    ? schema
                    : throw Invalid("'response_format.json_schema.schema' must be a JSON Schema object.", "response_format.json_schema.schema");
                break;
            default:
                throw Invalid($"'response_format' type '{request.ResponseFormat.Type}' is not supported; use text, json_object or json_schema.", "response_format.type");
        }

        if (ThinkingBudget(request.ReasoningEffort) is { } budget)
        {
            config.ThinkingConfig = new GeminiThinkingConfig { ThinkingBudget = budget, IncludeThoughts = budget > 0 ? true : null };
        }

        if (request.AdditionalProperties is { Count: > 0 } extra)
        {
            if (extra.TryGetValue("top_k", out var topK) && topK.ValueKind == JsonValueKind.Number)
            {
                config.TopK = topK.TryGetInt32(out var k) ? k : throw Invalid("'top_k' must be an integer.", "top_k");
            }

            Forward(extra, result, "safety_settings", "safetySettings");
            Forward(extra, result, "safetySettings", "safetySettings");
            Forward(extra, result, "cached_content", "cachedContent");
            Forward(extra, result, "cachedContent", "cachedContent");
        }

        result.GenerationConfig = config;
        return result;
    }

    private static void Forward(IDictionary<string, JsonElement> extra, GeminiRequest result, string from, string to)
    {
        if (extra.TryGetValue(from, out var value) && value.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined))
        {
            (result.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))[to] = value;
        }
    }

    private static void TranslateMessages(IList<ChatCompletionMessage> messages, GeminiRequest result)
    {
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw Invalid($"'messages[{i}]' must not be null.", $"messages[{i}]");
            var parts = new List<GeminiPart>();
            string role;
            switch (message.Role)
            {
                case "system" or "developer":
                    foreach (var part in Parts(message.Content, i, allowMedia: false))
                    {
                        (result.SystemInstruction ??= new GeminiContent()).Parts.Add(part);
                    }

                    continue;
                case "user":
                    role = "user";
                    parts.AddRange(Parts(message.Content, i, allowMedia: true));
                    break;
                case "assistant":
                    role = "model";
                    parts.AddRange(Parts(message.Content, i, allowMedia: false));
                    if (!string.IsNullOrEmpty(message.Refusal) && message.Content is null)
                    {
                        parts.Add(new GeminiPart { Text = message.Refusal });
                    }

                    AddFunctionCalls(message, parts, names, i);
                    break;
                case "tool":
                    role = "user";
                    parts.Add(FunctionResponse(message, names, i));
                    break;
                default:
                    throw Invalid($"Message role '{message.Role}' is not supported by Gemini (legacy 'function' messages: use tools and 'tool' messages).", $"messages[{i}].role");
            }

            if (parts.Count == 0)
            {
                continue; // Gemini rejects a content without parts; an empty message carries nothing.
            }

            if (result.Contents.Count > 0 && result.Contents[^1].Role == role)
            {
                // The function responses answering one model turn go in one user turn, and a user message after them joins it.
                foreach (var part in parts)
                {
                    result.Contents[^1].Parts.Add(part);
                }
            }
            else
            {
                result.Contents.Add(new GeminiContent { Role = role, Parts = parts });
            }
        }

        if (result.Contents.Count == 0)
        {
            throw Invalid("Gemini needs at least one user or assistant message with content.", "messages");
        }
    }

    private static IEnumerable<GeminiPart> Parts(ChatCompletionContent? content, int index, bool allowMedia)
    {
        if (content is null)
        {
            yield break;
        }

        if (content.Text is { } text)
        {
            if (text.Length > 0)
            {
                yield return new GeminiPart { Text = text };
            }

            yield break;
        }

        var parts = content.Parts!;
        for (var p = 0; p < parts.Count; p++)
        {
            var part = parts[p] ?? throw Invalid($"'messages[{index}].content[{p}]' must not be null.", $"messages[{index}].content[{p}]");
            var param = $"messages[{index}].content[{p}]";
            GeminiPart? translated = part.Type switch
            {
                "text" or "refusal" or "input_text" or "output_text" => PartText(part) is { Length: > 0 } partText ? new GeminiPart { Text = partText } : null,
                "image_url" when allowMedia => Image(part.ImageUrl?.Url, param + ".image_url.url"),
                "input_audio" when allowMedia => Audio(part, param),
                "file" when allowMedia => File(part, param),
                _ => throw Invalid($"Content part type '{part.Type}' is not supported by Gemini in this message.", param + ".type"),
            };

            if (translated is not null)
            {
                yield return translated;
            }
        }
    }

    private static string? PartText(ChatContentPart part) =>
        part.Text ?? (part.AdditionalProperties?.TryGetValue("refusal", out var refusal) == true && refusal.ValueKind == JsonValueKind.String ? refusal.GetString() : null);

    /// <summary>
    /// A data URL → <c>inlineData</c>; a Gemini Files API URI, <c>gs://</c> or YouTube URL → <c>fileData</c>. Other web URLs are
    /// refused: Gemini does not fetch them, and the gateway does not download on the caller's behalf.
    /// </summary>
    private static GeminiPart Image(string? url, string param)
    {
        if (string.IsNullOrEmpty(url))
        {
            throw Invalid("An image_url part needs 'image_url.url'.", param);
        }

        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            var (mediaType, data) = ParseDataUrl(url, param);
            return new GeminiPart { InlineData = new GeminiBlob { MimeType = mediaType, Data = data } };
        }

        if (IsGeminiFileUri(url))
        {
            return new GeminiPart { FileData = new GeminiFileData { FileUri = url, MimeType = GuessMimeType(url) } };
        }

        throw Invalid("Gemini takes images as base64 data URLs ('data:image/png;base64,...') or as Gemini Files API / gs:// URIs; it does not fetch other web URLs — download the image and send it as a data URL.", param);
    }

    private static bool IsGeminiFileUri(string url) =>
        url.StartsWith("https://generativelanguage.googleapis.com/", StringComparison.OrdinalIgnoreCase)
        || url.StartsWith("gs://", StringComparison.OrdinalIgnoreCase)
        || url.StartsWith("https://www.youtube.com/", StringComparison.OrdinalIgnoreCase)
        || url.StartsWith("https://youtu.be/", StringComparison.OrdinalIgnoreCase);

    private static string? GuessMimeType(string url)
    {
        var path = url.Split('?', '#')[0];
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".png" => "image/png",
            ".jpg" or ".jpeg" => "image/jpeg",
            ".webp" => "image/webp",
            ".gif" => "image/gif",
            ".heic" => "image/heic",
            ".pdf" => "application/pdf",
            _ => null,
        };
    }

    /// <summary><c>input_audio {data, format}</c> → <c>inlineData</c> with <c>audio/{format}</c>.</summary>
    private static GeminiPart Audio(ChatContentPart part, string param)
    {
        if (part.AdditionalProperties?.TryGetValue("input_audio", out var audio) != true || audio.ValueKind != JsonValueKind.Object
            || !audio.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.String)
        {
            throw Invalid("An input_audio part needs 'input_audio.data' (base64).", param + ".input_audio");
        }

        var format = audio.TryGetProperty("format", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : "wav";
        return new GeminiPart { InlineData = new GeminiBlob { MimeType = "audio/" + (format == "mp3" ? "mpeg" : format), Data = data.GetString() } };
    }

    /// <summary>A <c>file</c> part with inline <c>file_data</c> (a data URL) → <c>inlineData</c>.</summary>
    private static GeminiPart File(ChatContentPart part, string param)
    {
        if (part.AdditionalProperties?.TryGetValue("file", out var file) != true || file.ValueKind != JsonValueKind.Object
            || !file.TryGetProperty("file_data", out var fileData) || fileData.ValueKind != JsonValueKind.String)
        {
            throw Invalid("Gemini accepts file parts only with inline 'file.file_data' (a base64 data URL); uploaded file ids are not supported.", param + ".file");
        }

        var value = fileData.GetString()!;
        var (mediaType, data) = value.StartsWith("data:", StringComparison.OrdinalIgnoreCase)
            ? ParseDataUrl(value, param + ".file.file_data")
            : ("application/pdf", value);
        return new GeminiPart { InlineData = new GeminiBlob { MimeType = mediaType, Data = data } };
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

    /// <summary>
    /// <c>tool_calls</c> → <c>functionCall</c> parts with the call's id and its thought signature
    /// (<c>extra_content.google.thought_signature</c>, as this adapter returns it). A model turn whose first call has no
    /// signature (a history from another provider) gets Google's documented placeholder, which Gemini 3 requires.
    /// </summary>
    private static void AddFunctionCalls(ChatCompletionMessage message, List<GeminiPart> parts, Dictionary<string, string> names, int index)
    {
        if (message.ToolCalls is not { Count: > 0 } calls)
        {
            return;
        }

        for (var c = 0; c < calls.Count; c++)
        {
            var call = calls[c];
            var param = $"messages[{index}].tool_calls[{c}]";
            if (call is null || string.IsNullOrEmpty(call.Id) || string.IsNullOrEmpty(call.Function?.Name))
            {
                throw Invalid("A tool call needs an 'id' and a 'function.name'.", param);
            }

            names[call.Id] = call.Function.Name;
            var signature = ThoughtSignature(call);
            if (signature is null && c == 0)
            {
                signature = SkipSignature;
            }

            parts.Add(new GeminiPart
            {
                FunctionCall = new GeminiFunctionCall { Id = call.Id, Name = call.Function.Name, Args = ToolCallArguments.ParseObject(call.Function.Arguments, param + ".function.arguments", "Gemini") },
                ThoughtSignature = signature,
            });
        }
    }

    private static string? ThoughtSignature(ChatCompletionToolCall call)
    {
        if (call.AdditionalProperties?.TryGetValue("extra_content", out var extra) == true && extra.ValueKind == JsonValueKind.Object
            && extra.TryGetProperty("google", out var google) && google.ValueKind == JsonValueKind.Object
            && google.TryGetProperty("thought_signature", out var signature) && signature.ValueKind == JsonValueKind.String)
        {
            return signature.GetString();
        }

        return null;
    }

    /// <summary>A <c>tool</c> message → <c>functionResponse {id, name, response}</c>: a JSON object result as is, anything else as <c>{"content": text}</c>.</summary>
    private static GeminiPart FunctionResponse(ChatCompletionMessage message, Dictionary<string, string> names, int index)
    {
        if (string.IsNullOrEmpty(message.ToolCallId))
        {
            throw Invalid($"'messages[{index}].tool_call_id' is required for a tool message.", $"messages[{index}].tool_call_id");
        }

        if (!names.TryGetValue(message.ToolCallId, out var name))
        {
            name = message.Name is { Length: > 0 } named ? named
                : throw Invalid($"'messages[{index}].tool_call_id' '{message.ToolCallId}' answers no tool call of an earlier assistant message; Gemini needs the function's name.", $"messages[{index}].tool_call_id");
        }

        var text = message.Content?.GetText() ?? string.Empty;
        JsonElement response;
        try
        {
            using var document = JsonDocument.Parse(text);
            response = document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : Wrap(text);
        }
        catch (JsonException)
        {
            response = Wrap(text);
        }

        return new GeminiPart { FunctionResponse = new GeminiFunctionResponse { Id = message.ToolCallId, Name = name, Response = response } };
    }

    private static JsonElement Wrap(string text) =>
        ParseElement("{\"content\":" + JsonSerializer.Serialize(text, GeminiJsonContext.Wire.String) + "}");

    private static void TranslateTools(ChatCompletionRequest request, GeminiRequest result)
    {
        if (request.Tools is not { Count: > 0 } tools)
        {
            return; // tool_choice without tools means nothing to Gemini either
        }

        var declarations = new List<GeminiFunctionDeclaration>(tools.Count);
        for (var t = 0; t < tools.Count; t++)
        {
            var tool = tools[t];
            if (tool is null || tool.Type is not ("function" or null) || tool.Function is not { } function)
            {
                throw Invalid("Only function tools are supported by the Gemini adapter.", $"tools[{t}]");
            }

            if (string.IsNullOrEmpty(function.Name))
            {
                throw Invalid("A function tool needs a 'name'.", $"tools[{t}].function.name");
            }

            declarations.Add(new GeminiFunctionDeclaration
            {
                Name = function.Name,
                Description = function.Description,
                ParametersJsonSchema = function.Parameters is { ValueKind: JsonValueKind.Object } schema ? schema : null,
            });
        }

        result.Tools = [new GeminiTool { FunctionDeclarations = declarations }];
        if (request.ToolChoice is not { } choice || choice.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
        {
            return;
        }

        if (choice.ValueKind == JsonValueKind.String)
        {
            var mode = choice.GetString() switch
            {
                "auto" => "AUTO",
                "required" => "ANY",
                "none" => "NONE",
                var other => throw Invalid($"'tool_choice' '{other}' is not supported; use auto, required, none or a function.", "tool_choice"),
            };
            result.ToolConfig = new GeminiToolConfig { FunctionCallingConfig = new GeminiFunctionCallingConfig { Mode = mode } };
            return;
        }

        if (choice.ValueKind == JsonValueKind.Object
            && choice.TryGetProperty("function", out var fn) && fn.ValueKind == JsonValueKind.Object
            && fn.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String)
        {
            result.ToolConfig = new GeminiToolConfig { FunctionCallingConfig = new GeminiFunctionCallingConfig { Mode = "ANY", AllowedFunctionNames = [name.GetString()!] } };
            return;
        }

        throw Invalid("'tool_choice' must be auto, required, none or {\"type\":\"function\",\"function\":{\"name\":...}}.", "tool_choice");
    }

    internal static JsonElement ParseElement(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    internal static string Format(int value) => value.ToString(CultureInfo.InvariantCulture);

    internal static BifrostException Invalid(string message, string? param) =>
        BifrostErrors.UnsupportedParameter(message, param);
}
