using Bifrost.Middleware.Endpoints.Anthropic;
using Bifrost.Middleware.Providers.Anthropic;

namespace Bifrost.Middleware.Operations;

/// <summary>
/// The operations of the Anthropic-compatible routes (<c>MapBifrostAnthropic</c>): Messages and its token counting, in
/// Anthropic's own shapes. One descriptor each, so routing, keys, retries, fallbacks, governance, telemetry, the request
/// log and async jobs apply as to every operation; the adapter call is native where the adapter speaks Anthropic's API
/// (<see cref="IAnthropicMessagesAdapter"/>: the caller's body is sent as written, the answer and events relayed as the
/// provider wrote them) and converted through chat completions for every other provider. They map no routes under
/// <c>MapBifrost</c>'s prefix: <c>MapBifrostAnthropic</c> maps theirs.
/// </summary>
internal static class AnthropicOperations
{
    /// <summary>
    /// The response cache's form of a Messages event: its type and data as the caller read them, beside them the gateway's
    /// <c>extra_fields</c> and token counts, which Anthropic's wire does not carry (governance and telemetry read them on a
    /// replay as on the original); a stream is complete when it ends with <c>message_stop</c>.
    /// </summary>
    private static readonly ChunkCodec<AnthropicMessagesEvent> EventCodec = ChunkCodecs.Events<AnthropicMessagesEvent>(
        static e => e.Type,
        static e => e.Data,
        static (type, data, element) => new AnthropicMessagesEvent(type, data)
        {
            ExtraFields = element.TryGetProperty("extra_fields"u8, out var extra) && extra.ValueKind == JsonValueKind.Object ? extra.Deserialize(BifrostJson.Context.BifrostExtraFields) : null,
            Tokens = element.TryGetProperty("tokens"u8, out var tokens) && tokens.ValueKind == JsonValueKind.Array && tokens.GetArrayLength() == 5
                ? new TokenCounts(tokens[0].GetInt64(), tokens[1].GetInt64(), tokens[2].GetInt64(), tokens[3].GetInt64(), tokens[4].GetInt64())
                : null,
        },
        ["message_stop"],
        static (writer, e) =>
        {
            if (e.ExtraFields is { } extra)
            {
                writer.WritePropertyName("extra_fields"u8);
                JsonSerializer.Serialize(writer, extra, BifrostJson.Context.BifrostExtraFields);
            }

            if (e.Tokens is { } tokens)
            {
                writer.WriteStartArray("tokens"u8);
                writer.WriteNumberValue(tokens.Input);
                writer.WriteNumberValue(tokens.Output);
                writer.WriteNumberValue(tokens.CachedInput);
                writer.WriteNumberValue(tokens.CacheWrite);
                writer.WriteNumberValue(tokens.Reasoning);
                writer.WriteEndArray();
            }
        });

    public static readonly InferenceOperation<AnthropicMessagesRequest, AnthropicMessagesResponse, AnthropicMessagesEvent> Messages = new()
    {
        Name = "anthropic_messages",
        StreamName = "anthropic_messages_stream",
        MetricName = "chat",
        Summary = "Anthropic Messages",
        Tag = "Bifrost Anthropic",
        Paths = [],
        RequestInfo = AnthropicJsonContext.Wire.AnthropicMessagesRequest,
        ResponseInfo = AnthropicJsonContext.Wire.AnthropicMessagesResponse,
        StreamShape = StreamShape.Events,
        Model = static r => r.Model,
        SetModel = static (r, model) => r.Model = model,
        Fallbacks = static r => r.Fallbacks,
        Validate = static r => Check(r, forCounting: false),
        IsStreamRequested = static r => r.Stream,
        CheckBeforeQueue = static (r, target) =>
        {
            if (!IsNative(target.Provider.Adapter, target.Model))
            {
                _ = AnthropicInbound.ToChat(r.Parsed, forCounting: false); // refuses what chat cannot express before a job is stored
            }
        },
        Call = static async (call, r, ct) =>
        {
            if (call.Adapter is IAnthropicMessagesAdapter native && native.HasNativeMessages(call.Target.Model))
            {
                return await native.MessagesAsync(call.Context, r, ct).ConfigureAwait(false);
            }

            var chat = AnthropicInbound.ToChat(r.Parsed, forCounting: false);
            var answer = await call.Adapter.ChatCompletionAsync(call.Context, chat.ForProvider(call.Target.Model, stream: false), ct).ConfigureAwait(false);
            return AnthropicMessagesResponse.From(AnthropicInbound.FromChat(answer, call.Target.Model, chat.Stop));
        },
        CallStream = static (call, r, ct) =>
        {
            if (call.Adapter is IAnthropicMessagesAdapter native && native.HasNativeMessages(call.Target.Model))
            {
                return native.StreamMessagesAsync(call.Context, r, ct);
            }

            var chat = AnthropicInbound.ToChat(r.Parsed, forCounting: false).ForProvider(call.Target.Model, stream: true);
            return AnthropicChatEvents.FromChatAsync(call.Adapter.StreamChatCompletionAsync(call.Context, chat, ct), call.Target.Model, chat.Stop, ct);
        },
        WithChunkExtraFields = static (e, extra) =>
        {
            e.ExtraFields = extra;
            return e;
        },
        ChunkExtraFieldsOf = static e => e.ExtraFields,
        ChunkUsageOf = static e => e.Tokens,
        NewStreamCapture = static limit => new ChunkArrayCapture<AnthropicMessagesEvent>(limit, static e => e.Data.GetRawText()),
        CacheCodec = EventCodec,
        EstimateInputTokens = static (r, _) =>
        {
            try
            {
                var chat = AnthropicInbound.ToChat(r.Parsed, forCounting: true);
                return Tokenization.TokenEstimate.Chat(chat.Messages, chat.Tools);
            }
            catch (BifrostException)
            {
                return 0; // blocks only Anthropic reads (server tools, file sources): nothing reserved ahead
            }
        },
        Pending = static (job, _, model) => AnthropicMessagesResponse.From(new AnthropicResponse { Id = job.Id, Type = "message", Role = "assistant", Model = model, Content = [] }),
    };

    public static readonly InferenceOperation<AnthropicMessagesRequest, AnthropicCountTokensAnswer, AnthropicCountTokensAnswer> CountTokens = new()
    {
        Name = "anthropic_count_tokens",
        Summary = "Anthropic token counting",
        Tag = "Bifrost Anthropic",
        Paths = [],
        Async = false,
        RequestInfo = AnthropicJsonContext.Wire.AnthropicMessagesRequest,
        ResponseInfo = AnthropicJsonContext.Wire.AnthropicCountTokensAnswer,
        Model = static r => r.Model,
        SetModel = static (r, model) => r.Model = model,
        Fallbacks = static r => r.Fallbacks,
        Validate = static r => Check(r, forCounting: true),
        Call = static async (call, r, ct) =>
        {
            if (call.Adapter is IAnthropicMessagesAdapter native && native.HasNativeMessages(call.Target.Model)
                && await native.CountMessageTokensAsync(call.Context, r, ct).ConfigureAwait(false) is { } counted)
            {
                return counted;
            }

            // Another provider (a fallback; the route counts a non-Anthropic primary through IBifrostClient), or one that
            // cannot count this model: the local estimate.
            var chat = AnthropicInbound.ToChat(r.Parsed, forCounting: true);
            return new AnthropicCountTokensAnswer { InputTokens = Tokenization.TokenCounter.Shared.CountChat(call.Target.Model, chat.Messages!, chat.Tools).Tokens };
        },
        Pending = static (_, _, _) => new AnthropicCountTokensAnswer(),
    };

    /// <summary>The operations, in the order they are registered.</summary>
    public static IEnumerable<BifrostOperation> All => [Messages, CountTokens];

    /// <summary>Whether <paramref name="adapter"/> serves <paramref name="model"/> natively (<see cref="IAnthropicMessagesAdapter.HasNativeMessages"/>).</summary>
    internal static bool IsNative(IProviderAdapter adapter, string model) => adapter is IAnthropicMessagesAdapter native && native.HasNativeMessages(model);

    private static void Check(AnthropicMessagesRequest request, bool forCounting) => AnthropicInbound.Check(request, forCounting);
}
