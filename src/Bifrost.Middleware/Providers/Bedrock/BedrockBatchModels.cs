using System.Text;
using Bifrost.Middleware.Providers.Anthropic;

namespace Bifrost.Middleware.Providers.Bedrock;

/// <summary>
/// The model families whose batch records the gateway writes for Bedrock batch inference, in one table. A record's
/// <c>modelInput</c> is the model's own InvokeModel body and its <c>modelOutput</c> the model's own InvokeModel answer
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html), so each family says which endpoint it
/// serves, which lines it can carry exactly (<see cref="BedrockBatchFamily.Refuses"/>: anything else runs line by line
/// through the gateway), how it writes a line's body and how it reads an answer back into OpenAI's shape:
/// <list type="bullet">
/// <item>Claude (<c>anthropic.claude</c>): the Anthropic Messages body without <c>model</c>, with
/// <c>anthropic_version: bedrock-2023-05-31</c>; the answer is a Messages response
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html);</item>
/// <item>Amazon Nova (<c>amazon.nova-</c> text models): <c>{"schemaVersion": "messages-v1", "system": [{"text"}],
/// "messages": [{"role", "content": [{"text"}]}], "inferenceConfig": {"maxTokens", "temperature", "topP",
/// "stopSequences"}}</c>; the answer <c>{"output": {"message": {"content": [{"text"}]}}, "stopReason", "usage":
/// {"inputTokens", "outputTokens"}}</c> is read as a Converse answer
/// (https://docs.aws.amazon.com/nova/latest/userguide/complete-request-schema.html, using-invoke-api.html);</item>
/// <item>Meta Llama 3.x (<c>meta.llama3</c>): <c>{"prompt", "temperature", "top_p", "max_gen_len"}</c>, the prompt in
/// Llama 3's chat template (<c>&lt;|begin_of_text|&gt;</c>, one <c>&lt;|start_header_id|&gt;{role}&lt;|end_header_id|&gt;\n\n{text}&lt;|eot_id|&gt;</c>
/// per message, then the assistant header); the answer <c>{"generation", "prompt_token_count", "generation_token_count",
/// "stop_reason": "stop" | "length"}</c> (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-meta.html).
/// Llama 3 takes no stop sequences: a line with <c>stop</c> is refused;</item>
/// <item>Titan Text Embeddings V2 (<c>amazon.titan-embed-text-v2</c>), for <c>/v1/embeddings</c> batches:
/// <c>{"inputText", "dimensions"}</c> (one text per record; 256, 512 or 1024 dimensions); the answer <c>{"embedding",
/// "inputTextTokenCount"}</c> (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html).</item>
/// </list>
/// The chat families other than Claude carry text conversations only: tools, tool messages, images and other non-text
/// parts, <c>n</c> &gt; 1, <c>response_format</c>, log probabilities, penalties, <c>logit_bias</c>, <c>seed</c>,
/// <c>reasoning_effort</c>, a system message after the conversation started (Nova) and fields the gateway does not model
/// are refused, so such a batch runs through the gateway, where Converse carries what it can.
/// </summary>
internal static class BedrockBatchModels
{
    public const string ChatEndpoint = "/v1/chat/completions";
    public const string EmbeddingsEndpoint = "/v1/embeddings";

    /// <summary>Every family, Claude first.</summary>
    public static readonly BedrockBatchFamily[] Families =
    [
        new("Claude", ChatEndpoint, static m => m.Contains("anthropic.claude", StringComparison.Ordinal), ClaudeRefuses, WriteClaude, ClaudeOutput),
        new("Amazon Nova", ChatEndpoint, IsNovaText, static b => TextChatRefuses(b, stop: true, systemAnywhere: false), WriteNova, NovaOutput),
        new("Meta Llama 3", ChatEndpoint, static m => m.Contains("meta.llama3", StringComparison.Ordinal), static b => TextChatRefuses(b, stop: false, systemAnywhere: true), WriteLlama, LlamaOutput),
        new("Titan Text Embeddings V2", EmbeddingsEndpoint, static m => m.Contains("amazon.titan-embed-text-v2", StringComparison.Ordinal), TitanRefuses, WriteTitan, TitanOutput),
    ];

    /// <summary>The family of a model id, inference profile or model ARN; null when the gateway writes no batch records for it.</summary>
    public static BedrockBatchFamily? For(string? model) =>
        model is null ? null : Array.Find(Families, f => f.Matches(model));

    /// <summary>The families' names, for messages.</summary>
    public static string Names => string.Join(", ", Families.Select(static f => f.Name));

    private static bool IsNovaText(string model) =>
        model.Contains("amazon.nova-", StringComparison.Ordinal)
        && !model.Contains("nova-canvas", StringComparison.Ordinal) && !model.Contains("nova-reel", StringComparison.Ordinal) && !model.Contains("nova-sonic", StringComparison.Ordinal);

    private static ChatCompletionRequest Chat(JsonElement body) =>
        body.Deserialize(BifrostJson.Context.ChatCompletionRequest) ?? throw new JsonException("body is null");

    // ---- Claude

    private static string? ClaudeRefuses(JsonElement body)
    {
        try
        {
            AnthropicRequestTranslator.Translate(Chat(body), AnthropicRequestTranslator.DefaultMaxTokens);
            return null;
        }
        catch (BifrostException ex)
        {
            return ex.Message;
        }
    }

    private static void WriteClaude(Utf8JsonWriter writer, JsonElement line, int? defaultMaxTokens)
    {
        var body = AnthropicRequestTranslator.Translate(Chat(line), defaultMaxTokens ?? AnthropicRequestTranslator.DefaultMaxTokens);
        body.Model = null;
        body.Stream = null;
        (body.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal))["anthropic_version"] =
            JsonSerializer.SerializeToElement(BedrockAdapter.AnthropicVersion, AnthropicJsonContext.Wire.String);
        JsonSerializer.Serialize(writer, body, AnthropicJsonContext.Wire.AnthropicRequest);
    }

    private static BedrockBatchAnswer? ClaudeOutput(JsonElement output, BedrockBatchOutputContext context)
    {
        var message = output.Deserialize(AnthropicJsonContext.Wire.AnthropicResponse);
        if (message is null)
        {
            return null;
        }

        var chat = AnthropicResponseTranslator.ToChat(message, context.Created);
        return new BedrockBatchAnswer(message.Id, writer => JsonSerializer.Serialize(writer, chat, BifrostJson.Context.ChatCompletionResponse));
    }

    // ---- text conversations (Nova, Llama)

    /// <summary>Why a chat line is more than a text conversation these families carry exactly, or null.</summary>
    internal static string? TextChatRefuses(JsonElement body, bool stop, bool systemAnywhere)
    {
        var chat = Chat(body);
        var refused = chat switch
        {
            { Tools.Count: > 0 } => "'tools'",
            { ToolChoice: { ValueKind: not JsonValueKind.Null } } => "'tool_choice'",
            { N: > 1 } => "'n' > 1",
            { ResponseFormat.Type: { } type } when type != "text" => "'response_format' " + type,
            { Logprobs: true } or { TopLogprobs: not null } => "log probabilities",
            { LogitBias.Count: > 0 } => "'logit_bias'",
            { PresencePenalty: not null and not 0 } => "'presence_penalty'",
            { FrequencyPenalty: not null and not 0 } => "'frequency_penalty'",
            { Seed: not null } => "'seed'",
            { ReasoningEffort: not null } => "'reasoning_effort'",
            { Stop.Count: > 0 } when !stop => "'stop'",
            { AdditionalProperties: { Count: > 0 } extra } when extra.Any(static p => p.Value.ValueKind != JsonValueKind.Null) => $"'{extra.First(static p => p.Value.ValueKind != JsonValueKind.Null).Key}'",
            { Messages: null or { Count: 0 } } => "no messages",
            _ => null,
        };
        if (refused is not null)
        {
            return refused;
        }

        var started = false;
        foreach (var message in chat.Messages!)
        {
            if (message.ToolCalls is { Count: > 0 } || message.Role == "tool" || message.Role == "function")
            {
                return "tool calls or tool results";
            }

            if (message.Role is not ("system" or "developer" or "user" or "assistant"))
            {
                return $"a '{message.Role}' message";
            }

            if (message.Content?.Parts is { } parts && parts.Any(static p => p.Type != "text"))
            {
                return "a part that is not text (an image, audio or a file)";
            }

            var system = message.Role is "system" or "developer";
            if (system && started && !systemAnywhere)
            {
                return "a system message after the conversation started";
            }

            started |= !system;
        }

        return null;
    }

    private static int? MaxTokens(ChatCompletionRequest chat, int? defaultMaxTokens) => chat.MaxCompletionTokens ?? chat.MaxTokens ?? defaultMaxTokens;

    private static string Text(ChatCompletionMessage message) => message.Content?.GetText() ?? string.Empty;

    private static void WriteNova(Utf8JsonWriter writer, JsonElement line, int? defaultMaxTokens)
    {
        var chat = Chat(line);
        writer.WriteStartObject();
        writer.WriteString("schemaVersion", "messages-v1");
        var system = chat.Messages!.Where(static m => m.Role is "system" or "developer").ToList();
        if (system.Count > 0)
        {
            writer.WriteStartArray("system");
            foreach (var message in system)
            {
                writer.WriteStartObject();
                writer.WriteString("text", Text(message));
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        writer.WriteStartArray("messages");
        foreach (var message in chat.Messages!.Where(static m => m.Role is "user" or "assistant"))
        {
            writer.WriteStartObject();
            writer.WriteString("role", message.Role);
            writer.WriteStartArray("content");
            foreach (var text in message.Content?.Parts is { } parts ? parts.Select(static p => p.Text ?? string.Empty) : [Text(message)])
            {
                writer.WriteStartObject();
                writer.WriteString("text", text);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        var maxTokens = MaxTokens(chat, defaultMaxTokens);
        if (maxTokens is not null || chat.Temperature is not null || chat.TopP is not null || chat.Stop is { Count: > 0 })
        {
            writer.WriteStartObject("inferenceConfig");
            if (maxTokens is { } max)
            {
                writer.WriteNumber("maxTokens", max);
            }

            if (chat.Temperature is { } temperature)
            {
                writer.WriteNumber("temperature", temperature);
            }

            if (chat.TopP is { } topP)
            {
                writer.WriteNumber("topP", topP);
            }

            if (chat.Stop is { Count: > 0 } stop)
            {
                writer.WriteStartArray("stopSequences");
                foreach (var sequence in stop)
                {
                    writer.WriteStringValue(sequence);
                }

                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }

    private static BedrockBatchAnswer? NovaOutput(JsonElement output, BedrockBatchOutputContext context)
    {
        // Nova's InvokeModel answer has the Converse answer's shape (output.message.content[].text, stopReason, usage).
        var response = output.Deserialize(BedrockJsonContext.Wire.ConverseResponse);
        if (response?.Output?.Message is null)
        {
            return null;
        }

        var chat = BedrockResponseTranslator.ToChat(response, context.CompletionId, context.Model, context.Created);
        return new BedrockBatchAnswer(null, writer => JsonSerializer.Serialize(writer, chat, BifrostJson.Context.ChatCompletionResponse));
    }

    /// <summary>Llama 3's chat template: every message in order under its role's header, then the assistant's header.</summary>
    internal static string LlamaPrompt(IEnumerable<ChatCompletionMessage> messages)
    {
        var prompt = new StringBuilder("<|begin_of_text|>");
        foreach (var message in messages)
        {
            var role = message.Role == "developer" ? "system" : message.Role;
            prompt.Append("<|start_header_id|>").Append(role).Append("<|end_header_id|>\n\n").Append(Text(message)).Append("<|eot_id|>");
        }

        return prompt.Append("<|start_header_id|>assistant<|end_header_id|>\n\n").ToString();
    }

    private static void WriteLlama(Utf8JsonWriter writer, JsonElement line, int? defaultMaxTokens)
    {
        var chat = Chat(line);
        writer.WriteStartObject();
        writer.WriteString("prompt", LlamaPrompt(chat.Messages!));
        if (chat.Temperature is { } temperature)
        {
            writer.WriteNumber("temperature", temperature);
        }

        if (chat.TopP is { } topP)
        {
            writer.WriteNumber("top_p", topP);
        }

        if (MaxTokens(chat, defaultMaxTokens) is { } max)
        {
            writer.WriteNumber("max_gen_len", max);
        }

        writer.WriteEndObject();
    }

    private static BedrockBatchAnswer? LlamaOutput(JsonElement output, BedrockBatchOutputContext context)
    {
        var answer = output.Deserialize(BedrockJsonContext.Wire.LlamaResponse);
        if (answer?.Generation is null)
        {
            return null;
        }

        var prompt = answer.PromptTokenCount ?? 0;
        var completion = answer.GenerationTokenCount ?? 0;
        var chat = new ChatCompletionResponse
        {
            Id = context.CompletionId,
            Created = context.Created,
            Model = context.Model,
            Choices = [new ChatChoice { Index = 0, Message = new ChatResponseMessage { Content = answer.Generation }, FinishReason = answer.StopReason == "length" ? "length" : "stop" }],
            Usage = new ChatUsage { PromptTokens = prompt, CompletionTokens = completion, TotalTokens = prompt + completion },
        };
        return new BedrockBatchAnswer(null, writer => JsonSerializer.Serialize(writer, chat, BifrostJson.Context.ChatCompletionResponse));
    }

    // ---- Titan Text Embeddings V2

    private static EmbeddingRequest Embedding(JsonElement body) =>
        body.Deserialize(BifrostJson.Context.EmbeddingRequest) ?? throw new JsonException("body is null");

    private static string? TitanRefuses(JsonElement body)
    {
        var request = Embedding(body);
        return request switch
        {
            { Input: null } or { Input.Texts: not { Count: 1 } } => "an 'input' that is not one text (a Titan record embeds one text; token ids are not text)",
            { Dimensions: not null and not (256 or 512 or 1024) } => $"'dimensions' {request.Dimensions} (Titan Text Embeddings V2 has 256, 512 or 1024)",
            { EncodingFormat: { } format } when format != "float" => $"'encoding_format' {format}",
            { AdditionalProperties: { Count: > 0 } extra } when extra.Any(static p => p.Value.ValueKind != JsonValueKind.Null) => $"'{extra.First(static p => p.Value.ValueKind != JsonValueKind.Null).Key}'",
            _ => null,
        };
    }

    private static void WriteTitan(Utf8JsonWriter writer, JsonElement line, int? defaultMaxTokens)
    {
        var request = Embedding(line);
        JsonSerializer.Serialize(writer, new TitanEmbedRequest { InputText = request.Input!.Texts![0], Dimensions = request.Dimensions }, BedrockJsonContext.Wire.TitanEmbedRequest);
    }

    private static BedrockBatchAnswer? TitanOutput(JsonElement output, BedrockBatchOutputContext context)
    {
        var answer = output.Deserialize(BedrockJsonContext.Wire.TitanEmbedResponse);
        if (answer?.Embedding is not { } vector)
        {
            return null;
        }

        var tokens = answer.InputTextTokenCount ?? 0;
        var response = new EmbeddingResponse
        {
            Data = [new EmbeddingData { Index = 0, Embedding = new EmbeddingVector(vector) }],
            Model = context.Model,
            Usage = new EmbeddingUsage { PromptTokens = tokens, TotalTokens = tokens },
        };
        return new BedrockBatchAnswer(null, writer => JsonSerializer.Serialize(writer, response, BifrostJson.Context.EmbeddingResponse));
    }
}

/// <summary>One row of <see cref="BedrockBatchModels.Families"/>.</summary>
/// <param name="Name">The family's name, for messages.</param>
/// <param name="Endpoint">The gateway endpoint its batches serve.</param>
/// <param name="Matches">Whether a model id (or profile, or ARN) is of the family.</param>
/// <param name="Refuses">Why a line's body cannot be written exactly as the model's InvokeModel body, or null.</param>
/// <param name="WriteInput">Writes a line's body as the model's InvokeModel body (the provider's <c>DefaultMaxTokens</c> given).</param>
/// <param name="ReadOutput">Reads a record's <c>modelOutput</c> into the OpenAI body of its output line; null when it is not the model's answer.</param>
internal sealed record BedrockBatchFamily(
    string Name,
    string Endpoint,
    Func<string, bool> Matches,
    Func<JsonElement, string?> Refuses,
    Action<Utf8JsonWriter, JsonElement, int?> WriteInput,
    Func<JsonElement, BedrockBatchOutputContext, BedrockBatchAnswer?> ReadOutput);

/// <summary>What an output line is written with: the completion id, the job's model and the time.</summary>
internal readonly record struct BedrockBatchOutputContext(string CompletionId, string Model, long Created);

/// <summary>A record's answer in OpenAI's shape: the provider's request id (if any) and a writer of the body.</summary>
internal sealed record BedrockBatchAnswer(string? RequestId, Action<Utf8JsonWriter> WriteBody);
