using System.Text.Encodings.Web;

namespace Bifrost.Middleware.Providers.Anthropic;

// The Anthropic Messages API wire format (anthropic-version 2023-06-01), as flat classes: one class per object kind,
// with every field optional, so that polymorphic objects (content blocks, stream events, deltas) read and write
// without custom converters. Unknown fields are kept in extension data and survive a round trip.

/// <summary>The body of <c>POST /v1/messages</c> and <c>POST /v1/messages/count_tokens</c> (and a batch line's <c>params</c>).</summary>
internal sealed class AnthropicRequest
{
    public string? Model { get; set; }

    /// <summary>Required by <c>/v1/messages</c>; absent for <c>count_tokens</c>.</summary>
    public int? MaxTokens { get; set; }

    public IList<AnthropicMessage> Messages { get; set; } = [];

    /// <summary>The system prompt as text blocks (so <c>cache_control</c> can ride along); read from a string too.</summary>
    [JsonConverter(typeof(AnthropicBlocksConverter))]
    public IList<AnthropicContentBlock>? System { get; set; }

    public double? Temperature { get; set; }

    public double? TopP { get; set; }

    public IList<string>? StopSequences { get; set; }

    public bool? Stream { get; set; }

    public IList<AnthropicTool>? Tools { get; set; }

    public AnthropicToolChoice? ToolChoice { get; set; }

    /// <summary><c>{"type":"enabled","budget_tokens":N}</c>, or what the caller sent as <c>thinking</c>.</summary>
    public JsonElement? Thinking { get; set; }

    public AnthropicMetadata? Metadata { get; set; }

    public string? ServiceTier { get; set; }

    /// <summary>Anthropic-only fields the caller sent (<c>top_k</c>, <c>container</c>, <c>mcp_servers</c>, ...).</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

internal sealed class AnthropicMessage
{
    public string Role { get; set; } = "user";

    /// <summary>The turn's blocks; a string is read as one text block.</summary>
    [JsonConverter(typeof(AnthropicBlocksConverter))]
    public IList<AnthropicContentBlock> Content { get; set; } = [];
}

internal sealed class AnthropicMetadata
{
    public string? UserId { get; set; }
}

/// <summary>
/// Any content block: <c>text</c>, <c>image</c>, <c>document</c>, <c>tool_use</c>, <c>tool_result</c>, <c>thinking</c>,
/// <c>redacted_thinking</c>, server tool blocks, ...
/// </summary>
internal sealed class AnthropicContentBlock
{
    public string? Type { get; set; }

    public string? Text { get; set; }

    public AnthropicSource? Source { get; set; }

    /// <summary>tool_use: the call id.</summary>
    public string? Id { get; set; }

    /// <summary>tool_use: the tool name.</summary>
    public string? Name { get; set; }

    /// <summary>tool_use: the arguments object.</summary>
    public JsonElement? Input { get; set; }

    /// <summary>tool_result: the call answered.</summary>
    public string? ToolUseId { get; set; }

    /// <summary>tool_result: the result as blocks (text, image); a string is read as one text block.</summary>
    [JsonConverter(typeof(AnthropicBlocksConverter))]
    public IList<AnthropicContentBlock>? Content { get; set; }

    public bool? IsError { get; set; }

    /// <summary>thinking: the reasoning text.</summary>
    public string? Thinking { get; set; }

    /// <summary>thinking: the signature that authenticates it on a later turn.</summary>
    public string? Signature { get; set; }

    /// <summary>redacted_thinking: the encrypted reasoning.</summary>
    public string? Data { get; set; }

    public JsonElement? CacheControl { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

/// <summary>An image or document source: <c>base64</c> (media_type + data), <c>url</c>, or <c>text</c>.</summary>
internal sealed class AnthropicSource
{
    public string? Type { get; set; }

    public string? MediaType { get; set; }

    public string? Data { get; set; }

    public string? Url { get; set; }
}

/// <summary>A client tool (<c>name</c>, <c>description</c>, <c>input_schema</c>) or a server tool passed through as the caller wrote it.</summary>
internal sealed class AnthropicTool
{
    public string? Type { get; set; }

    public string? Name { get; set; }

    public string? Description { get; set; }

    public JsonElement? InputSchema { get; set; }

    public JsonElement? CacheControl { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

internal sealed class AnthropicToolChoice
{
    /// <summary><c>auto</c>, <c>any</c>, <c>tool</c>, <c>none</c>.</summary>
    public string Type { get; set; } = "auto";

    public string? Name { get; set; }

    public bool? DisableParallelToolUse { get; set; }
}

/// <summary>A message (the answer of <c>POST /v1/messages</c>, <c>message_start.message</c>, a batch result's message).</summary>
internal sealed class AnthropicResponse
{
    public string? Id { get; set; }

    public string? Type { get; set; }

    public string? Role { get; set; }

    public string? Model { get; set; }

    public IList<AnthropicContentBlock>? Content { get; set; }

    public string? StopReason { get; set; }

    public string? StopSequence { get; set; }

    public AnthropicUsage? Usage { get; set; }
}

internal sealed class AnthropicUsage
{
    public int? InputTokens { get; set; }

    public int? OutputTokens { get; set; }

    public int? CacheCreationInputTokens { get; set; }

    public int? CacheReadInputTokens { get; set; }

    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}

/// <summary>
/// A stream event: <c>message_start</c> (message), <c>content_block_start</c> (index, content_block),
/// <c>content_block_delta</c> (index, delta), <c>content_block_stop</c> (index), <c>message_delta</c> (delta, usage),
/// <c>message_stop</c>, <c>ping</c>, <c>error</c> (error).
/// </summary>
internal sealed class AnthropicStreamEvent
{
    public string? Type { get; set; }

    public AnthropicResponse? Message { get; set; }

    public int? Index { get; set; }

    public AnthropicContentBlock? ContentBlock { get; set; }

    public AnthropicDelta? Delta { get; set; }

    public AnthropicUsage? Usage { get; set; }

    public AnthropicErrorDetail? Error { get; set; }
}

/// <summary>
/// A delta: <c>text_delta</c> (text), <c>input_json_delta</c> (partial_json), <c>thinking_delta</c> (thinking),
/// <c>signature_delta</c> (signature), <c>citations_delta</c>; or, in <c>message_delta</c>, the stop reason.
/// </summary>
internal sealed class AnthropicDelta
{
    public string? Type { get; set; }

    public string? Text { get; set; }

    public string? PartialJson { get; set; }

    public string? Thinking { get; set; }

    public string? Signature { get; set; }

    public string? StopReason { get; set; }

    public string? StopSequence { get; set; }
}

/// <summary><c>{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}</c>.</summary>
internal sealed class AnthropicErrorResponse
{
    public string? Type { get; set; }

    public AnthropicErrorDetail? Error { get; set; }
}

internal sealed class AnthropicErrorDetail
{
    public string? Type { get; set; }

    public string? Message { get; set; }

    /// <summary>A batch result's <c>error</c> is a whole error response: <c>{"type":"error","error":{...}}</c>.</summary>
    public AnthropicErrorDetail? Error { get; set; }
}

internal sealed class AnthropicCountTokensResponse
{
    public int InputTokens { get; set; }
}

internal sealed class AnthropicModelList
{
    public IList<AnthropicModel> Data { get; set; } = [];

    public bool HasMore { get; set; }

    public string? FirstId { get; set; }

    public string? LastId { get; set; }
}

internal sealed class AnthropicModel
{
    public string? Type { get; set; }

    public string? Id { get; set; }

    public string? DisplayName { get; set; }

    public DateTimeOffset? CreatedAt { get; set; }
}

/// <summary>A Message Batch (<c>POST /v1/messages/batches</c>, <c>GET .../{id}</c>, <c>POST .../{id}/cancel</c>).</summary>
internal sealed class AnthropicBatch
{
    public string? Id { get; set; }

    public string? Type { get; set; }

    /// <summary><c>in_progress</c>, <c>canceling</c>, <c>ended</c>.</summary>
    public string? ProcessingStatus { get; set; }

    public AnthropicBatchCounts RequestCounts { get; set; } = new();

    public DateTimeOffset? CreatedAt { get; set; }

    public DateTimeOffset? ExpiresAt { get; set; }

    public DateTimeOffset? EndedAt { get; set; }

    public DateTimeOffset? CancelInitiatedAt { get; set; }

    public DateTimeOffset? ArchivedAt { get; set; }

    public string? ResultsUrl { get; set; }
}

internal sealed class AnthropicBatchCounts
{
    public int Processing { get; set; }

    public int Succeeded { get; set; }

    public int Errored { get; set; }

    public int Canceled { get; set; }

    public int Expired { get; set; }
}

/// <summary>One line of a batch's results: <c>{"custom_id","result":{"type":"succeeded","message":{...}}}</c>.</summary>
internal sealed class AnthropicBatchResultLine
{
    public string? CustomId { get; set; }

    public AnthropicBatchResult? Result { get; set; }
}

internal sealed class AnthropicBatchResult
{
    /// <summary><c>succeeded</c>, <c>errored</c>, <c>canceled</c>, <c>expired</c>.</summary>
    public string? Type { get; set; }

    public AnthropicResponse? Message { get; set; }

    public AnthropicErrorDetail? Error { get; set; }
}

/// <summary><c>prompt_tokens_details</c> of a translated usage.</summary>
internal sealed class AnthropicPromptTokensDetails
{
    public int CachedTokens { get; set; }

    /// <summary>Not an OpenAI field: the prompt tokens written to Anthropic's cache (billed at the cache-write rate).</summary>
    public int CacheCreationTokens { get; set; }
}

/// <summary>One entry of a message's <c>reasoning_details</c>: the signed (or redacted) thinking of an Anthropic answer.</summary>
internal sealed class AnthropicReasoningDetail
{
    /// <summary><c>reasoning.text</c> (text + signature) or <c>reasoning.encrypted</c> (data).</summary>
    public string? Type { get; set; }

    public string? Text { get; set; }

    public string? Signature { get; set; }

    public string? Data { get; set; }

    public string? Format { get; set; }

    public int? Index { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict,
    UseStringEnumConverter = false)]
[JsonSerializable(typeof(AnthropicRequest))]
[JsonSerializable(typeof(IList<AnthropicContentBlock>))]
[JsonSerializable(typeof(AnthropicResponse))]
[JsonSerializable(typeof(AnthropicStreamEvent))]
[JsonSerializable(typeof(AnthropicErrorResponse))]
[JsonSerializable(typeof(AnthropicCountTokensResponse))]
[JsonSerializable(typeof(AnthropicModelList))]
[JsonSerializable(typeof(AnthropicBatch))]
[JsonSerializable(typeof(AnthropicBatchResultLine))]
[JsonSerializable(typeof(AnthropicPromptTokensDetails))]
[JsonSerializable(typeof(IList<AnthropicReasoningDetail>))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]

// Anthropic native passthrough (the /anthropic inbound routes).
[JsonSerializable(typeof(AnthropicMessagesRequest))]
[JsonSerializable(typeof(AnthropicMessagesResponse))]
[JsonSerializable(typeof(AnthropicCountTokensAnswer))]
internal sealed partial class AnthropicJsonContext : JsonSerializerContext
{
    /// <summary>The context the adapter uses: generated metadata with the relaxed encoder the gateway writes with.</summary>
    public static AnthropicJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}

/// <summary>
/// Content that Anthropic accepts either as a string or as an array of blocks (<c>system</c>, a message's
/// <c>content</c>, a <c>tool_result</c>'s <c>content</c>): a string is read as one text block; blocks are written as blocks.
/// </summary>
internal sealed class AnthropicBlocksConverter : JsonConverter<IList<AnthropicContentBlock>>
{
    public override IList<AnthropicContentBlock>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.String
            ? [new AnthropicContentBlock { Type = "text", Text = reader.GetString() }]
            : JsonSerializer.Deserialize(ref reader, Blocks(options));

    public override void Write(Utf8JsonWriter writer, IList<AnthropicContentBlock> value, JsonSerializerOptions options) =>
        JsonSerializer.Serialize(writer, value, Blocks(options));

    private static System.Text.Json.Serialization.Metadata.JsonTypeInfo<IList<AnthropicContentBlock>> Blocks(JsonSerializerOptions options) =>
        (System.Text.Json.Serialization.Metadata.JsonTypeInfo<IList<AnthropicContentBlock>>)options.GetTypeInfo(typeof(IList<AnthropicContentBlock>));
}
