using System.Net.ServerSentEvents;

namespace Bifrost.Middleware.Providers.Http;

/// <summary>Turns a provider's stream events into chat chunks, one event at a time (a native adapter's stream translator).</summary>
/// <typeparam name="TEvent">The provider's parsed event.</typeparam>
internal interface IChatStreamTranslator<in TEvent>
{
    /// <summary>True once the provider's end marker was translated: nothing follows it (false for providers without one).</summary>
    bool Completed { get; }

    /// <summary>Appends the chunks <paramref name="evt"/> stands for (none, one or several).</summary>
    void Translate(TEvent evt, List<ChatCompletionChunk> output);
}

/// <summary>
/// The relay loop every native adapter's chat stream shares: the upstream's SSE body parsed event by event by the
/// adapter's parser (a failure it reports — the provider's error event — is thrown as is), each event translated, its
/// chunks yielded at once (the first disarms the first-chunk deadline), and the loop left as soon as the translator has
/// seen the end marker (the body is not read to its end). The caller checks <see cref="IChatStreamTranslator{TEvent}.Completed"/>
/// (or its own end condition) afterwards: a body that ended without it is an incomplete stream.
/// </summary>
internal static class SseChatRelay
{
    public static async IAsyncEnumerable<ChatCompletionChunk> RelayAsync<TEvent>(
        HttpResponseMessage response,
        AttemptDeadline deadline,
        SseItemParser<(TEvent? Event, BifrostException? Failure)> parse,
        IChatStreamTranslator<TEvent> translator)
        where TEvent : class
    {
        // The deadline's token carries the caller's cancellation and the first-chunk timeout.
        var chunks = new List<ChatCompletionChunk>(4);
        await using var stream = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
        await foreach (var item in SseParser.Create(stream, parse).EnumerateAsync(deadline.Token).ConfigureAwait(false))
        {
            if (item.Data.Failure is { } failure)
            {
                throw failure;
            }

            if (item.Data.Event is not { } evt)
            {
                continue;
            }

            chunks.Clear();
            translator.Translate(evt, chunks);
            foreach (var chunk in chunks)
            {
                deadline.Disarm();
                yield return chunk;
            }

            if (translator.Completed)
            {
                yield break;
            }
        }
    }
}
