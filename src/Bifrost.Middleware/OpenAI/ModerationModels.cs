namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI moderations request (<c>POST moderations</c>), plus Bifrost's <c>fallbacks</c>.</summary>
public sealed class ModerationRequest : InferenceRequest
{
    /// <summary>Creates an empty request (set <see cref="InferenceRequest.Model"/> and <see cref="Input"/>).</summary>
    public ModerationRequest()
    {
    }

    /// <summary>
    /// What to classify: a string, an array of strings (one result each), or an array of multimodal parts
    /// (<c>{"type":"text","text":...}</c>, <c>{"type":"image_url","image_url":{"url":...}}</c>; one result for all).
    /// </summary>
    public JsonElement? Input { get; set; }

    /// <summary>A shallow copy for one provider attempt: the provider's bare model, no fallbacks.</summary>
    internal ModerationRequest ForProvider(string model) => CopyForProvider<ModerationRequest>(model);
}

/// <summary>An OpenAI moderations response.</summary>
public sealed class ModerationResponse : ExtensibleObject, Operations.IOperationAnswer
{
    /// <summary>The moderation id (<c>modr-...</c>).</summary>
    public string? Id { get; set; }

    /// <summary>The model that answered.</summary>
    public string? Model { get; set; }

    /// <summary>One result per input string (one for a multimodal input).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IList<ModerationClassification> Results { get; set; } = [];

    /// <summary>Gateway metadata.</summary>
    public BifrostExtraFields? ExtraFields { get; set; }

    Operations.TokenCounts? Operations.IOperationAnswer.Tokens => null;
}

/// <summary>The classification of one input.</summary>
public sealed class ModerationClassification : ExtensibleObject
{
    /// <summary>Whether any category is flagged.</summary>
    public bool Flagged { get; set; }

    /// <summary>Each category and whether it is flagged (e.g. <c>harassment</c>, <c>violence/graphic</c>).</summary>
    public IDictionary<string, bool>? Categories { get; set; }

    /// <summary>Each category's score, from 0 to 1.</summary>
    public IDictionary<string, double>? CategoryScores { get; set; }

    /// <summary>Each category's input types the score applies to (<c>text</c>, <c>image</c>).</summary>
    public IDictionary<string, IList<string>>? CategoryAppliedInputTypes { get; set; }
}
