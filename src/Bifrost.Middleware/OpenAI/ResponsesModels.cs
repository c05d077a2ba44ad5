namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI Responses API request (<c>POST responses</c>, <c>POST responses/input_tokens</c>), plus Bifrost's <c>fallbacks</c>.</summary>
public sealed class ResponsesRequest : InferenceRequest, Operations.IStreamableRequest
{
    /// <summary>Creates an empty request (set <see cref="InferenceRequest.Model"/> and <see cref="Input"/>).</summary>
    public ResponsesRequest()
    {
    }

    /// <summary>Creates a request for <paramref name="model"/> with the given input.</summary>
    /// <param name="model">The model, as <c>provider/model</c> or a bare model of the default provider.</param>
    /// <param name="input">A string (converts implicitly) or a list of items.</param>
    public ResponsesRequest(string model, ResponsesInput input)
        : base(model) => Input = input ?? throw new ArgumentNullException(nameof(input));

    /// <summary>The input: a string, or a list of items (messages, function calls and their outputs).</summary>
    public ResponsesInput? Input { get; set; }

    /// <summary>A system (developer) message put before the input.</summary>
    public string? Instructions { get; set; }

    /// <summary>Tools the model may call.</summary>
    public IList<ResponsesTool>? Tools { get; set; }

    /// <summary><c>none</c>, <c>auto</c>, <c>required</c> or a function object.</summary>
    public JsonElement? ToolChoice { get; set; }

    /// <summary>Output text options (<c>format</c>).</summary>
    public ResponsesTextOptions? Text { get; set; }

    /// <summary>Reasoning options (<c>effort</c>, <c>summary</c>).</summary>
    public ResponsesReasoning? Reasoning { get; set; }

    /// <summary>Maximum output tokens, including reasoning.</summary>
    public int? MaxOutputTokens { get; set; }

    /// <summary>Sampling temperature.</summary>
    public double? Temperature { get; set; }

    /// <summary>Nucleus sampling probability mass.</summary>
    public double? TopP { get; set; }

    /// <summary>Whether tool calls may run in parallel.</summary>
    public bool? ParallelToolCalls { get; set; }

    /// <summary>Developer-defined tags: strings (a number or boolean is read as its text).</summary>
    [JsonConverter(typeof(StringMetadataConverter))]
    public IDictionary<string, string>? Metadata { get; set; }

    /// <summary>A previous response to continue (needs server-side state: only on providers with a native Responses API).</summary>
    public string? PreviousResponseId { get; set; }

    /// <summary>Whether to stream events.</summary>
    public bool? Stream { get; set; }

    void Operations.IStreamableRequest.ClearStream() => Stream = null;

    /// <summary>Whether the provider stores the response.</summary>
    public bool? Store { get; set; }

    /// <summary>A stable identifier of the end user.</summary>
    public string? User { get; set; }

    /// <summary>A shallow copy for one provider attempt: the provider's bare model, no fallbacks, <c>stream</c> only when streaming.</summary>
    internal ResponsesRequest ForProvider(string model, bool stream)
    {
        var copy = CopyForProvider<ResponsesRequest>(model);
        copy.Stream = stream ? true : null;
        return copy;
    }
}

/// <summary>Responses input: a string or a list of items.</summary>
[JsonConverter(typeof(ResponsesInputConverter))]
public sealed class ResponsesInput
{
    /// <summary>Creates text input.</summary>
    /// <param name="text">The text (one user message).</param>
    public ResponsesInput(string text) => Text = text ?? throw new ArgumentNullException(nameof(text));

    /// <summary>Text input: lets a string stand for the input (<c>Input = "Hello"</c>).</summary>
    /// <param name="text">The text.</param>
    public static implicit operator ResponsesInput(string text) => FromString(text);

    /// <summary>Creates text input (the named form of the implicit conversion from <see cref="string"/>).</summary>
    /// <param name="text">The text.</param>
    public static ResponsesInput FromString(string text) => new(text);

    /// <summary>Creates item input.</summary>
    /// <param name="items">The items.</param>
    public ResponsesInput(IList<ResponsesItem> items) => Items = items ?? throw new ArgumentNullException(nameof(items));

    /// <summary>The text, when the input is a string.</summary>
    public string? Text { get; }

    /// <summary>The items, when the input is a list.</summary>
    public IList<ResponsesItem>? Items { get; }
}

/// <summary>An input or output item: a message, a function call, a function call's output, reasoning, ...</summary>
public sealed class ResponsesItem : ExtensibleObject
{
    /// <summary><c>message</c> (default when <see cref="Role"/> is set), <c>function_call</c>, <c>function_call_output</c>, <c>reasoning</c>, ...</summary>
    public string? Type { get; set; }

    /// <summary>The item's id.</summary>
    public string? Id { get; set; }

    /// <summary><c>completed</c>, <c>in_progress</c>, <c>incomplete</c>.</summary>
    public string? Status { get; set; }

    /// <summary>For messages: <c>user</c>, <c>assistant</c>, <c>system</c>, <c>developer</c>.</summary>
    public string? Role { get; set; }

    /// <summary>For messages: a string or content parts.</summary>
    public ResponsesContent? Content { get; set; }

    /// <summary>For function calls and their outputs: the call id.</summary>
    public string? CallId { get; set; }

    /// <summary>For function calls: the function's name.</summary>
    public string? Name { get; set; }

    /// <summary>For function calls: the JSON arguments.</summary>
    public string? Arguments { get; set; }

    /// <summary>For call outputs: the output — a string, or what the item type allows besides (content parts of a <c>function_call_output</c>, the screenshot object of a <c>computer_call_output</c>).</summary>
    public JsonElement? Output { get; set; }
}

/// <summary>Message content: a string or a list of parts.</summary>
[JsonConverter(typeof(ResponsesContentConverter))]
public sealed class ResponsesContent
{
    /// <summary>Creates text content.</summary>
    /// <param name="text">The text.</param>
    public ResponsesContent(string text) => Text = text ?? throw new ArgumentNullException(nameof(text));

    /// <summary>Text content: lets a string stand for the content.</summary>
    /// <param name="text">The text.</param>
    public static implicit operator ResponsesContent(string text) => FromString(text);

    /// <summary>Creates text content (the named form of the implicit conversion from <see cref="string"/>).</summary>
    /// <param name="text">The text.</param>
    public static ResponsesContent FromString(string text) => new(text);

    /// <summary>Creates multi-part content.</summary>
    /// <param name="parts">The parts.</param>
    public ResponsesContent(IList<ResponsesContentPart> parts) => Parts = parts ?? throw new ArgumentNullException(nameof(parts));

    /// <summary>The text, when a string.</summary>
    public string? Text { get; }

    /// <summary>The parts, when a list.</summary>
    public IList<ResponsesContentPart>? Parts { get; }
}

/// <summary>A content part: <c>input_text</c>, <c>output_text</c>, <c>input_image</c>, <c>input_file</c>, <c>refusal</c>, ...</summary>
public sealed class ResponsesContentPart : ExtensibleObject
{
    /// <summary>The part type.</summary>
    public string? Type { get; set; }

    /// <summary>The text of a text part.</summary>
    public string? Text { get; set; }

    /// <summary>The image URL (or data URI) of an <c>input_image</c>.</summary>
    public string? ImageUrl { get; set; }

    /// <summary>An uploaded file id of an <c>input_image</c> / <c>input_file</c>.</summary>
    public string? FileId { get; set; }

    /// <summary><c>low</c>, <c>high</c> or <c>auto</c>.</summary>
    public string? Detail { get; set; }

    /// <summary>Annotations of an <c>output_text</c>.</summary>
    public IList<JsonElement>? Annotations { get; set; }
}

/// <summary>A Responses tool (function tools are flat: <c>{type, name, description, parameters, strict}</c>).</summary>
public sealed class ResponsesTool : NamedSchema
{
    /// <summary><c>function</c>, or a hosted tool type (<c>web_search</c>, <c>file_search</c>, ...).</summary>
    [JsonPropertyOrder(-2)]
    public string? Type { get; set; }

    /// <summary>The JSON schema of the arguments.</summary>
    public JsonElement? Parameters { get; set; }
}

/// <summary>Output text options.</summary>
public sealed class ResponsesTextOptions : ExtensibleObject
{
    /// <summary>The format: <c>{type: text}</c>, <c>{type: json_object}</c> or <c>{type: json_schema, name, schema, strict}</c>.</summary>
    public ResponsesTextFormat? Format { get; set; }
}

/// <summary>The output format.</summary>
public sealed class ResponsesTextFormat
{
    /// <summary><c>text</c>, <c>json_object</c> or <c>json_schema</c>.</summary>
    public string? Type { get; set; }

    /// <summary>The schema's name.</summary>
    public string? Name { get; set; }

    /// <summary>What the schema is for.</summary>
    public string? Description { get; set; }

    /// <summary>The JSON schema.</summary>
    public JsonElement? Schema { get; set; }

    /// <summary>Whether to follow it strictly.</summary>
    public bool? Strict { get; set; }
}

/// <summary>Reasoning options.</summary>
public sealed class ResponsesReasoning
{
    /// <summary><c>minimal</c>, <c>low</c>, <c>medium</c>, <c>high</c>.</summary>
    public string? Effort { get; set; }

    /// <summary>Summary mode.</summary>
    public string? Summary { get; set; }
}

/// <summary>A <c>response</c> object of the Responses API.</summary>
public sealed class ResponsesResponse : ExtensibleObject, Operations.IOperationAnswer
{
    /// <summary>The response id (<c>resp_...</c>).</summary>
    public string? Id { get; set; }

    /// <summary>Always <c>response</c>.</summary>
    public string Object { get; set; } = "response";

    /// <summary>Unix seconds.</summary>
    public long CreatedAt { get; set; }

    /// <summary><c>completed</c>, <c>in_progress</c>, <c>incomplete</c>, <c>failed</c>, <c>queued</c>.</summary>
    public string Status { get; set; } = "completed";

    /// <summary>Why the response is incomplete, if it is.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public JsonElement? IncompleteDetails { get; set; }

    /// <summary>The error, if the response failed.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public JsonElement? Error { get; set; }

    /// <summary>The instructions used: a string, or input items (what OpenAI answers when a reusable prompt was used).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public ResponsesInput? Instructions { get; set; }

    /// <summary>The output token limit used.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public int? MaxOutputTokens { get; set; }

    /// <summary>The model that answered.</summary>
    public string? Model { get; set; }

    /// <summary>The output items.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IList<ResponsesItem> Output { get; set; } = [];

    /// <summary>Whether tool calls could run in parallel.</summary>
    public bool ParallelToolCalls { get; set; } = true;

    /// <summary>The previous response continued, if any.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? PreviousResponseId { get; set; }

    /// <summary>Temperature used.</summary>
    public double? Temperature { get; set; }

    /// <summary>Top-p used.</summary>
    public double? TopP { get; set; }

    /// <summary>The tool choice used.</summary>
    public JsonElement? ToolChoice { get; set; }

    /// <summary>The tools offered.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IList<ResponsesTool> Tools { get; set; } = [];

    /// <summary>The metadata sent.</summary>
    public IDictionary<string, string>? Metadata { get; set; }

    /// <summary>The text options used.</summary>
    public ResponsesTextOptions? Text { get; set; }

    /// <summary>Token usage.</summary>
    public ResponsesUsage? Usage { get; set; }

    Operations.TokenCounts? Operations.IOperationAnswer.Tokens => Usage is { } usage ? Operations.TokenCounts.Of(usage.InputTokens, usage.OutputTokens, usage.InputTokensDetails, usage.OutputTokensDetails) : null;

    /// <summary>Gateway metadata.</summary>
    public BifrostExtraFields? ExtraFields { get; set; }
}

/// <summary>Token usage of a response.</summary>
public sealed class ResponsesUsage
{
    /// <summary>Input tokens.</summary>
    public int InputTokens { get; set; }

    /// <summary>Input token breakdown (<c>cached_tokens</c>).</summary>
    public JsonElement? InputTokensDetails { get; set; }

    /// <summary>Output tokens.</summary>
    public int OutputTokens { get; set; }

    /// <summary>Output token breakdown (<c>reasoning_tokens</c>).</summary>
    public JsonElement? OutputTokensDetails { get; set; }

    /// <summary>Input plus output tokens.</summary>
    public int TotalTokens { get; set; }
}

/// <summary>One Responses streaming event: its type (<c>response.output_text.delta</c>, ...) and its JSON (which includes <c>type</c>).</summary>
public sealed class ResponsesStreamEvent
{
    /// <summary>Creates an event.</summary>
    /// <param name="type">The event type.</param>
    /// <param name="data">The event's JSON object.</param>
    public ResponsesStreamEvent(string type, JsonElement data)
    {
        Type = type ?? throw new ArgumentNullException(nameof(type));
        Data = data;
    }

    /// <summary>The event type.</summary>
    public string Type { get; }

    /// <summary>The event's JSON object.</summary>
    public JsonElement Data { get; }
}

/// <summary>The answer of <c>POST responses/input_tokens</c>.</summary>
public sealed class InputTokensResponse
{
    /// <summary>Always <c>response.input_tokens</c>.</summary>
    public string Object { get; set; } = "response.input_tokens";

    /// <summary>The count.</summary>
    public int InputTokens { get; set; }

    /// <summary>Gateway metadata; <c>count_method</c> says <c>native</c> (the provider counted) or <c>estimated</c> (counted locally).</summary>
    public BifrostExtraFields? ExtraFields { get; set; }
}
