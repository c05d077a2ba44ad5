namespace Bifrost.Middleware.Providers.Azure;

/// <summary>
/// Azure's stream sends annotation-only chunks: first one with no choices, an empty id and model and the prompt's
/// <c>prompt_filter_results</c>, and (with asynchronous filtering) later ones carrying only filter results
/// (https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter). A chunk with neither choices nor usage is
/// held and its fields are added to the next chunk; a chunk without an id, object or model gets the stream's.
/// </summary>
internal sealed class AzureStreamAnnotations
{
    private Dictionary<string, JsonElement>? _held;
    private string? _id;
    private string? _model;
    private long _created;

    /// <summary>Completes <paramref name="chunk"/>; false when it is held (an annotation only) and not to be sent.</summary>
    public bool Complete(ChatCompletionChunk chunk)
    {
        if (chunk.Choices.Count == 0 && chunk.Usage is null)
        {
            if (chunk.AdditionalProperties is { Count: > 0 } extra)
            {
                _held ??= new(StringComparer.Ordinal);
                foreach (var (name, value) in extra)
                {
                    _held[name] = value;
                }
            }

            return false;
        }

        if (_held is not null)
        {
            chunk.AdditionalProperties ??= new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var (name, value) in _held)
            {
                chunk.AdditionalProperties.TryAdd(name, value);
            }

            _held = null;
        }

        if (string.IsNullOrEmpty(chunk.Id))
        {
            chunk.Id = _id;
        }
        else
        {
            _id = chunk.Id;
        }

        if (string.IsNullOrEmpty(chunk.Model))
        {
            chunk.Model = _model;
        }
        else
        {
            _model = chunk.Model;
        }

        if (chunk.Created == 0)
        {
            chunk.Created = _created;
        }
        else
        {
            _created = chunk.Created;
        }

        if (string.IsNullOrEmpty(chunk.Object))
        {
            chunk.Object = "chat.completion.chunk";
        }

        return true;
    }
}
