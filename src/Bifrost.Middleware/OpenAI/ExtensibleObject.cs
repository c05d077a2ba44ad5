namespace Bifrost.Middleware.OpenAI;

/// <summary>
/// A wire object that keeps the fields it does not model: they are read into <see cref="AdditionalProperties"/> and
/// written back (after the modelled fields) unchanged, so they reach the provider or the caller as they were sent.
/// </summary>
public abstract class ExtensibleObject
{
    /// <summary>Every field this type does not model, passed through unchanged.</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement>? AdditionalProperties { get; set; }
}
