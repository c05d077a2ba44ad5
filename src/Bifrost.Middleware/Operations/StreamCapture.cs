using System.Text;

namespace Bifrost.Middleware.Operations;

/// <summary>
/// What a stream said, accumulated while its chunks are relayed, for content capture (the request log's
/// <see cref="RequestLog.RequestLogEntry.ResponseContent"/>, the span's output messages). Created only when capture is on
/// (no allocation otherwise); <see cref="Add"/> is synchronous and never delays a chunk. Bounded: at most the limit's
/// characters of content are kept, what exceeds it is dropped and the capture is marked <see cref="Truncated"/>. The JSON
/// ends with a marker object <c>bifrost_capture</c>: <c>{"stream":true,"complete":..,"truncated":..,"chunks":..}</c>
/// (<c>complete</c> false: the stream failed or the caller left it, and what was relayed so far is what is kept).
/// </summary>
internal abstract class StreamCapture<TChunk>(int limit)
    where TChunk : class
{
    public const string MarkerName = "bifrost_capture";

    private int _used;

    /// <summary>Whether content was dropped at the limit.</summary>
    public bool Truncated { get; private set; }

    /// <summary>Chunks seen.</summary>
    public int Chunks { get; private set; }

    /// <summary>The assembled answer in the operation's non-stream shape (chat: a <see cref="ChatCompletionResponse"/>), or null when there is none.</summary>
    public virtual object? Answer => null;

    public void Add(TChunk chunk)
    {
        Chunks++;
        Accumulate(chunk);
    }

    /// <summary>The captured JSON, marked with how the stream ended.</summary>
    public abstract string ToJson(bool complete);

    protected abstract void Accumulate(TChunk chunk);

    /// <summary>How many of <paramref name="length"/> characters may still be kept (the rest is dropped, marked).</summary>
    protected int Take(int length)
    {
        var room = Math.Max(0, limit - _used);
        var taken = Math.Min(room, length);
        _used += taken;
        if (taken < length)
        {
            Truncated = true;
        }

        return taken;
    }

    /// <summary>Whether a piece of <paramref name="length"/> characters fits whole (else nothing of it is kept, marked).</summary>
    protected bool TakeWhole(int length)
    {
        if (Truncated || _used + length > limit)
        {
            Truncated = true;
            return false;
        }

        _used += length;
        return true;
    }

    protected void Append(ref StringBuilder? builder, string? piece)
    {
        if (string.IsNullOrEmpty(piece))
        {
            return;
        }

        var taken = Take(piece.Length);
        if (taken > 0 && taken < piece.Length && char.IsHighSurrogate(piece[taken - 1]))
        {
            taken--; // never half a character
        }

        if (taken > 0)
        {
            (builder ??= new StringBuilder()).Append(piece, 0, taken);
        }
    }

    protected void WriteMarker(Utf8JsonWriter writer, bool complete, bool? truncated = null)
    {
        writer.WriteStartObject(MarkerName);
        writer.WriteBoolean("stream", true);
        writer.WriteBoolean("complete", complete);
        writer.WriteBoolean("truncated", truncated ?? Truncated);
        writer.WriteNumber("chunks", Chunks);
        writer.WriteEndObject();
    }

    protected JsonElement Marker(bool complete)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            WriteMarker(writer, complete);
            writer.WriteEndObject();
        }

        using var document = JsonDocument.Parse(buffer.ToArray());
        return document.RootElement.GetProperty(MarkerName).Clone();
    }

    /// <summary>Writes a JSON document with <paramref name="write"/> into a string.</summary>
    protected static string Write(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer);
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}

/// <summary>
/// The fallback for operations without an assembled shape: the chunks as they went out, a JSON array (each chunk whole,
/// in order, until the limit), followed by the <c>bifrost_capture</c> marker object as its last element.
/// </summary>
internal class ChunkArrayCapture<TChunk>(int limit, Func<TChunk, string> serialize) : StreamCapture<TChunk>(limit)
    where TChunk : class
{
    private readonly StringBuilder _chunks = new();

    public override string ToJson(bool complete)
    {
        var marker = Write(writer =>
        {
            writer.WriteStartObject();
            WriteMarker(writer, complete);
            writer.WriteEndObject();
        });
        return _chunks.Length == 0 ? string.Concat("[", marker, "]") : string.Concat("[", _chunks.ToString(), ",", marker, "]");
    }

    protected override void Accumulate(TChunk chunk)
    {
        if (Truncated)
        {
            return;
        }

        var json = serialize(chunk);
        if (TakeWhole(json.Length))
        {
            if (_chunks.Length > 0)
            {
                _chunks.Append(',');
            }

            _chunks.Append(json);
        }
    }
}

/// <summary>
/// A chat stream assembled into the <c>chat.completion</c> it stands for: per choice the message's text, refusal and
/// tool calls (deltas joined by index: id, name, arguments), the finish reason; the envelope's id, model, created,
/// fingerprint and service tier; the usage and the <c>extra_fields</c> (of the chunk that carried the cost, else the
/// first). Text, refusal, tool names and arguments count towards the limit.
/// </summary>
internal sealed class ChatStreamCapture(int limit) : StreamCapture<ChatCompletionChunk>(limit)
{
    private readonly SortedDictionary<int, ChoiceState> _choices = [];
    private ChatCompletionChunk? _envelope;
    private ChatUsage? _usage;
    private BifrostExtraFields? _extra;

    public override object? Answer => Assemble();

    public override string ToJson(bool complete)
    {
        var answer = Assemble();
        answer.AdditionalProperties ??= new Dictionary<string, JsonElement>();
        answer.AdditionalProperties[MarkerName] = Marker(complete);
        return JsonSerializer.Serialize(answer, BifrostJson.Context.ChatCompletionResponse);
    }

    protected override void Accumulate(ChatCompletionChunk chunk)
    {
        _envelope ??= chunk;
        _usage = chunk.Usage ?? _usage;
        if (chunk.ExtraFields is { } extra && (_extra is null || extra.Cost is not null))
        {
            _extra = extra;
        }

        foreach (var choice in chunk.Choices)
        {
            if (!_choices.TryGetValue(choice.Index, out var state))
            {
                _choices[choice.Index] = state = new ChoiceState();
            }

            state.FinishReason = choice.FinishReason ?? state.FinishReason;
            var delta = choice.Delta;
            if (delta is null)
            {
                continue;
            }

            state.Role ??= delta.Role;
            Append(ref state.Content, delta.Content);
            Append(ref state.Refusal, delta.Refusal);
            if (delta.ToolCalls is { Count: > 0 } calls)
            {
                for (var i = 0; i < calls.Count; i++)
                {
                    var call = calls[i];
                    var index = call.Index ?? i;
                    if (!state.Calls.TryGetValue(index, out var pending))
                    {
                        state.Calls[index] = pending = new CallState();
                    }

                    pending.Id = string.IsNullOrEmpty(call.Id) ? pending.Id : call.Id;
                    pending.Type ??= call.Type;
                    Append(ref pending.Name, call.Function?.Name);
                    Append(ref pending.Arguments, call.Function?.Arguments);
                }
            }
        }
    }

    private ChatCompletionResponse Assemble()
    {
        var choices = new List<ChatChoice>(_choices.Count);
        foreach (var (index, state) in _choices)
        {
            List<ChatCompletionToolCall>? calls = null;
            foreach (var call in state.Calls.Values)
            {
                (calls ??= []).Add(new ChatCompletionToolCall
                {
                    Id = call.Id,
                    Type = call.Type ?? "function",
                    Function = new ChatCompletionFunctionCall { Name = call.Name?.ToString(), Arguments = call.Arguments?.ToString() ?? string.Empty },
                });
            }

            choices.Add(new ChatChoice
            {
                Index = index,
                FinishReason = state.FinishReason,
                Message = new ChatResponseMessage
                {
                    Role = state.Role ?? "assistant",
                    Content = state.Content?.ToString(),
                    Refusal = state.Refusal?.ToString(),
                    ToolCalls = calls,
                },
            });
        }

        return new ChatCompletionResponse
        {
            Id = _envelope?.Id,
            Created = _envelope?.Created ?? 0,
            Model = _envelope?.Model,
            SystemFingerprint = _envelope?.SystemFingerprint,
            ServiceTier = _envelope?.ServiceTier,
            Choices = choices,
            Usage = _usage,
            ExtraFields = _extra,
        };
    }

    private sealed class ChoiceState
    {
        public string? Role;
        public StringBuilder? Content;
        public StringBuilder? Refusal;
        public string? FinishReason;
        public SortedDictionary<int, CallState> Calls { get; } = [];
    }

    private sealed class CallState
    {
        public string? Id;
        public string? Type;
        public StringBuilder? Name;
        public StringBuilder? Arguments;
    }
}

/// <summary>
/// A Responses stream: the whole <c>response</c> of its terminal event (<c>response.completed</c>, <c>.incomplete</c>,
/// <c>.failed</c>), as the non-stream call answers it, when it fits the limit; else (a stream cut before its end, or an
/// answer too large) the events' data as a <see cref="ChunkArrayCapture{TChunk}"/>.
/// </summary>
internal sealed class ResponsesStreamCapture(int limit) : ChunkArrayCapture<ResponsesStreamEvent>(limit, static e => e.Data.GetRawText())
{
    private readonly int _limit = limit;
    private JsonElement? _response;

    public override string ToJson(bool complete)
    {
        if (_response is not { } response)
        {
            return base.ToJson(complete);
        }

        return Write(writer =>
        {
            writer.WriteStartObject();
            foreach (var property in response.EnumerateObject())
            {
                if (property.Name != MarkerName)
                {
                    property.WriteTo(writer);
                }
            }

            WriteMarker(writer, complete, truncated: false); // the whole answer, however many events did not fit
            writer.WriteEndObject();
        });
    }

    protected override void Accumulate(ResponsesStreamEvent chunk)
    {
        if (chunk.Type is "response.completed" or "response.incomplete" or "response.failed"
            && chunk.Data.ValueKind == JsonValueKind.Object
            && chunk.Data.TryGetProperty("response"u8, out var response)
            && response.ValueKind == JsonValueKind.Object
            && response.GetRawText().Length <= _limit)
        {
            _response = response.Clone();
            return;
        }

        base.Accumulate(chunk);
    }
}
