using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Bifrost.Middleware.Operations;
using Bifrost.Middleware.Providers.Anthropic;
using Microsoft.AspNetCore.Http.Features;

namespace Bifrost.Middleware.Endpoints.Anthropic;

/// <summary>
/// Turns a chat completion stream into Anthropic's Messages event sequence (a provider other than Anthropic serving the
/// <c>/anthropic</c> routes): <c>message_start</c>, <c>ping</c>, per block <c>content_block_start</c> /
/// <c>content_block_delta</c> (<c>thinking_delta</c>, <c>signature_delta</c>, <c>text_delta</c>, <c>input_json_delta</c>) /
/// <c>content_block_stop</c>, then <c>message_delta</c> (stop reason and usage) and <c>message_stop</c>. Nothing is
/// produced before the first chunk, so the gateway still retries and falls back until then.
/// </summary>
internal sealed class AnthropicChatEvents
{
    private readonly List<AnthropicMessagesEvent> _events = [];
    private readonly IList<string>? _stopSequences;
    private readonly Dictionary<int, int> _blockOfTool = [];
    private int _nextBlock;
    private int _openBlock = -1;
    private string? _openType;
    private string? _finishReason;
    private IDictionary<string, JsonElement>? _finishFields;
    private ChatUsage? _usage;

    private AnthropicChatEvents(IList<string>? stopSequences) => _stopSequences = stopSequences;

    /// <summary>The events of <paramref name="chunks"/>, as each chunk arrives.</summary>
    public static async IAsyncEnumerable<AnthropicMessagesEvent> FromChatAsync(IAsyncEnumerable<ChatCompletionChunk> chunks, string requestedModel, IList<string>? stopSequences, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var converter = new AnthropicChatEvents(stopSequences);
        var started = false;
        await foreach (var chunk in chunks.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            if (!started)
            {
                converter.Start(chunk, requestedModel);
                started = true;
            }

            converter.Take(chunk);
            foreach (var item in converter.Drain())
            {
                yield return item;
            }
        }

        if (!started)
        {
            converter.Start(null, requestedModel);
        }

        converter.Finish();
        foreach (var item in converter.Drain())
        {
            yield return item;
        }
    }

    private void Start(ChatCompletionChunk? first, string requestedModel)
    {
        Event(new AnthropicStreamEvent
        {
            Type = "message_start",
            Message = new AnthropicResponse
            {
                Id = AnthropicInbound.MessageId(first?.Id),
                Type = "message",
                Role = "assistant",
                Model = first?.Model ?? requestedModel,
                Content = [],
                Usage = new AnthropicUsage { InputTokens = 0, OutputTokens = 0 },
            },
        });
        Event(new AnthropicStreamEvent { Type = "ping" });
    }

    private List<AnthropicMessagesEvent> Drain()
    {
        var drained = new List<AnthropicMessagesEvent>(_events);
        _events.Clear();
        return drained;
    }

    private void Take(ChatCompletionChunk chunk)
    {
        if (chunk.Usage is { } usage)
        {
            _usage = usage;
        }

        if (chunk.Choices.Count == 0)
        {
            return;
        }

        var choice = chunk.Choices[0];
        var delta = choice.Delta;
        if (delta.AdditionalProperties is { } fields)
        {
            Reasoning(fields);
        }

        if (!string.IsNullOrEmpty(delta.Content))
        {
            if (_openType != "text")
            {
                Open("text", new AnthropicContentBlock { Type = "text", Text = string.Empty });
            }

            Delta(_openBlock, new AnthropicDelta { Type = "text_delta", Text = delta.Content });
        }

        foreach (var call in delta.ToolCalls ?? [])
        {
            var toolIndex = call.Index ?? 0;
            if (!_blockOfTool.TryGetValue(toolIndex, out var block))
            {
                block = Open("tool_use", AnthropicInbound.ToolUse(call.Id ?? $"toolu_{toolIndex}", call.Function?.Name ?? string.Empty, AnthropicInbound.EmptyObject));
                _blockOfTool[toolIndex] = block;
            }

            if (!string.IsNullOrEmpty(call.Function?.Arguments))
            {
                Delta(block, new AnthropicDelta { Type = "input_json_delta", PartialJson = call.Function.Arguments });
            }
        }

        if (choice.FinishReason is { } finish)
        {
            _finishReason = finish;
            _finishFields = choice.AdditionalProperties;
        }
    }

    /// <summary><c>delta.reasoning</c> text → a thinking block's <c>thinking_delta</c>; <c>reasoning_details</c> → its signature, or a redacted_thinking block.</summary>
    private void Reasoning(IDictionary<string, JsonElement> fields)
    {
        foreach (var name in (ReadOnlySpan<string>)["reasoning", "reasoning_content"])
        {
            if (fields.TryGetValue(name, out var text) && text.ValueKind == JsonValueKind.String && text.GetString() is { Length: > 0 } thinking)
            {
                if (_openType != "thinking")
                {
                    Open("thinking", new AnthropicContentBlock { Type = "thinking", Thinking = string.Empty, Signature = string.Empty });
                }

                Delta(_openBlock, new AnthropicDelta { Type = "thinking_delta", Thinking = thinking });
                break;
            }
        }

        if (!fields.TryGetValue("reasoning_details", out var details) || details.ValueKind != JsonValueKind.Array)
        {
            return;
        }

        foreach (var detail in details.EnumerateArray())
        {
            switch (AnthropicInbound.ThinkingBlock(detail))
            {
                case { Type: "thinking" } signed:
                    if (_openType != "thinking")
                    {
                        Open("thinking", new AnthropicContentBlock { Type = "thinking", Thinking = string.Empty, Signature = string.Empty });
                        if (!string.IsNullOrEmpty(signed.Thinking))
                        {
                            Delta(_openBlock, new AnthropicDelta { Type = "thinking_delta", Thinking = signed.Thinking });
                        }
                    }

                    if (!string.IsNullOrEmpty(signed.Signature))
                    {
                        Delta(_openBlock, new AnthropicDelta { Type = "signature_delta", Signature = signed.Signature });
                    }

                    Close(); // a signed block is complete
                    break;
                case { Type: "redacted_thinking" } redacted:
                    Open("redacted_thinking", redacted);
                    Close();
                    break;
                default:
                    break;
            }
        }
    }

    private int Open(string type, AnthropicContentBlock block)
    {
        Close();
        _openBlock = _nextBlock++;
        _openType = type;
        Event(new AnthropicStreamEvent { Type = "content_block_start", Index = _openBlock, ContentBlock = block });
        return _openBlock;
    }

    private void Close()
    {
        if (_openBlock >= 0)
        {
            Event(new AnthropicStreamEvent { Type = "content_block_stop", Index = _openBlock });
            _openBlock = -1;
            _openType = null;
        }
    }

    private void Delta(int index, AnthropicDelta delta) =>
        Event(new AnthropicStreamEvent { Type = "content_block_delta", Index = index, Delta = delta });

    private void Finish()
    {
        Close();
        var (stopReason, stopSequence) = AnthropicInbound.StopReason(_finishReason, _finishFields, _stopSequences);
        var usage = AnthropicInbound.Usage(_usage);
        var tokens = _usage is { } u ? TokenCounts.Of(u.PromptTokens, u.CompletionTokens, u.PromptTokensDetails, u.CompletionTokensDetails) : (TokenCounts?)null;
        Event(new AnthropicStreamEvent { Type = "message_delta", Delta = new AnthropicDelta { StopReason = stopReason, StopSequence = stopSequence }, Usage = usage }, tokens);
        Event(new AnthropicStreamEvent { Type = "message_stop" });
    }

    private void Event(AnthropicStreamEvent item, TokenCounts? tokens = null) => _events.Add(AnthropicMessagesEvent.From(item, tokens));
}

/// <summary>
/// Writes a Messages event stream: <c>event: {type}</c> + <c>data: {json}</c> per event, each flushed as it comes.
/// Failures before the first event are ordinary JSON errors (in Anthropic's envelope, by the route's guard); after it, one
/// <c>error</c> event ends the stream.
/// </summary>
internal static class AnthropicSse
{
    public static async Task WriteAsync(HttpContext context, IAsyncEnumerable<AnthropicMessagesEvent> events, CancellationToken cancellationToken)
    {
        await using var enumerator = events.GetAsyncEnumerator(cancellationToken);
        var more = await enumerator.MoveNextAsync().ConfigureAwait(false); // a failure here is answered as JSON
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var body = response.BodyWriter;
        using var json = new Utf8JsonWriter(body, BifrostJson.WriterOptions);
        try
        {
            while (more)
            {
                Write(body, json, enumerator.Current.Type, enumerator.Current.Data);
                await body.FlushAsync(cancellationToken).ConfigureAwait(false);
                more = await enumerator.MoveNextAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (Failure(context, ex) is { } error)
        {
            Write(body, json, "error", JsonSerializer.SerializeToElement(new AnthropicStreamEvent { Type = "error", Error = AnthropicInbound.Error(error).Error }, AnthropicJsonContext.Wire.AnthropicStreamEvent));
            await body.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static BifrostException? Failure(HttpContext context, Exception exception) => exception switch
    {
        BifrostException bifrost => bifrost,
        OperationCanceledException when context.RequestAborted.IsCancellationRequested => null,
        _ => BifrostResults.Unexpected(context, exception, afterStart: true),
    };

    private static void Write(PipeWriter body, Utf8JsonWriter json, string type, JsonElement data)
    {
        body.Write("event: "u8);
        body.Write(System.Text.Encoding.UTF8.GetBytes(type));
        body.Write("\ndata: "u8);
        json.Reset(body);
        data.WriteTo(json);
        json.Flush();
        body.Write("\n\n"u8);
    }
}
