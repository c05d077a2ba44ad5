namespace Bifrost.Middleware.OpenAI;

/// <summary>An OpenAI model list (<c>GET models</c>).</summary>
public sealed class ModelList
{
    /// <summary>Always <c>list</c>.</summary>
    public string Object { get; set; } = "list";

    /// <summary>The models, ids in <c>provider/model</c> form.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IList<ModelInfo> Data { get; set; } = [];

    /// <summary>Gateway metadata.</summary>
    public BifrostExtraFields? ExtraFields { get; set; }
}

/// <summary>An OpenAI model object.</summary>
public sealed class ModelInfo : ExtensibleObject
{
    /// <summary>The model id.</summary>
    public string Id { get; set; } = string.Empty;

    /// <summary>Always <c>model</c>.</summary>
    public string Object { get; set; } = "model";

    /// <summary>Unix seconds when the model was created, if known.</summary>
    public long Created { get; set; }

    /// <summary>The owner.</summary>
    public string? OwnedBy { get; set; }
}
