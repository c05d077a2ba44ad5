using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json.Serialization.Metadata;

namespace Bifrost.Middleware.Providers.Http;

/// <summary>How an upstream takes its key: the header used when <see cref="ProviderOptions.AuthHeader"/> is left at <c>Authorization</c>, and headers it needs unless the provider's options set them.</summary>
/// <param name="KeyHeader">Null: <c>Authorization: Bearer {key}</c>; otherwise the header carrying the bare key (e.g. <c>x-api-key</c>).</param>
/// <param name="DefaultHeaders">Headers sent unless <see cref="ProviderOptions.Headers"/> names them (e.g. an API version).</param>
internal sealed record UpstreamAuth(string? KeyHeader, KeyValuePair<string, string>[] DefaultHeaders)
{
    /// <summary><c>Authorization: Bearer {key}</c> (OpenAI and most servers speaking its API).</summary>
    public static readonly UpstreamAuth Bearer = new(null, []);
}

/// <summary>
/// What every HTTP adapter does the same way, in one place: one named client per adapter (registered by <see cref="Register"/>:
/// no HttpClient timeout, no
/// redirects, cookies or URL logging, the gateway's JSON text rule on answers); building a request (Accept, the provider's
/// headers, the key); sending it, each attempt timed by the provider's <see cref="ProviderOptions.Timeout"/>, with timeouts and transport failures mapped to retryable 502/504 <see cref="BifrostException"/>s; reading
/// an error answer (bounded body, <c>Retry-After</c>) through the adapter's own error parser; reading a JSON answer; and the
/// first-chunk timeout of streams (<see cref="UntilFirstChunk"/>).
/// </summary>
internal sealed class UpstreamClient : IDisposable
{
    private static readonly MediaTypeHeaderValue JsonMediaType = new("application/json");
    private static readonly MediaTypeWithQualityHeaderValue AcceptJson = new("application/json");
    private static readonly MediaTypeWithQualityHeaderValue AcceptEventStream = new("text/event-stream");

    private readonly IHttpClientFactory _factory;
    private readonly string _name;
    private readonly TimeProvider _time;
    private readonly UpstreamAuth _auth;
    private readonly Func<UpstreamError, BifrostException> _parseError;
    private HttpMessageInvoker? _invoker;
    private HttpClient? _client;

    /// <param name="factory">The factory holding the named client.</param>
    /// <param name="name">The adapter's own client name (registered with <see cref="Register"/>).</param>
    /// <param name="time">The clock of Retry-After dates and of the first-chunk timeout.</param>
    /// <param name="auth">How the upstream takes its key.</param>
    /// <param name="parseError">The upstream's error answer as an exception (its own error shape).</param>
    public UpstreamClient(IHttpClientFactory factory, string name, TimeProvider time, UpstreamAuth auth, Func<UpstreamError, BifrostException> parseError)
    {
        _factory = factory;
        _name = name;
        _time = time;
        _auth = auth;
        _parseError = parseError;
    }

    /// <summary>
    /// Registers an adapter's named client: no HttpClient timeout — <see cref="SendAsync"/> times each attempt with the provider's
    /// <see cref="ProviderOptions.Timeout"/> (10 minutes by default: raised for LLM calls), around the whole handler pipeline;
    /// retries and fallbacks are the gateway's (one loop for every adapter, honouring Retry-After, never after a streamed
    /// byte). No redirects, no cookies, no logging of URLs. A host may configure the client further by its name.
    /// </summary>
    /// <remarks>
    /// The trace context sent to the upstream follows <see cref="TelemetryOptions.UpstreamTraceContext"/>
    /// (<see cref="UpstreamTraceContextPolicy"/>, applied by <see cref="UpstreamTextHandler"/>); HttpClient's own propagator is kept.
    /// </remarks>
    public static void Register(IServiceCollection services, string name) =>
        services.AddHttpClient(name, static client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(static () =>
            {
                var handler = new SocketsHttpHandler
                {
                    AllowAutoRedirect = false,
                    UseCookies = false,
                    UseProxy = true,
                    AutomaticDecompression = DecompressionMethods.None,
                    PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                    PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
                    ConnectTimeout = TimeSpan.FromSeconds(15),
                    MaxConnectionsPerServer = int.MaxValue,
                };
                return handler;
            })
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan)
            .RemoveAllLoggers()
            .AddHttpMessageHandler(static sp => new UpstreamTextHandler(TraceContext(sp)));

    private static UpstreamTraceContext TraceContext(IServiceProvider services)
    {
        var mode = services.GetService<Microsoft.Extensions.Options.IOptions<BifrostOptions>>()?.Value.Telemetry.UpstreamTraceContext ?? UpstreamTraceContext.Auto;
        if (mode != UpstreamTraceContext.Always)
        {
            UpstreamTraceContextPolicy.EnsureWatching();
        }

        return mode;
    }

    /// <summary>A request with the Accept header, the provider's headers (after the upstream's defaults it does not override) and the key.</summary>
    public HttpRequestMessage CreateRequest(ProviderContext context, HttpMethod method, Uri uri, bool stream)
    {
        var message = new HttpRequestMessage(method, uri);
        message.Headers.Accept.Add(stream ? AcceptEventStream : AcceptJson);
        var headers = context.Options.Headers;
        foreach (var (name, value) in _auth.DefaultHeaders)
        {
            if (!headers.ContainsKey(name))
            {
                message.Headers.TryAddWithoutValidation(name, value);
            }
        }

        foreach (var (name, value) in headers)
        {
            message.Headers.TryAddWithoutValidation(name, value);
        }

        if (context.ApiKey is { Length: > 0 } key)
        {
            var configured = context.Options.AuthHeader;
            if (!string.Equals(configured, "Authorization", StringComparison.OrdinalIgnoreCase))
            {
                message.Headers.TryAddWithoutValidation(configured, key);
            }
            else if (_auth.KeyHeader is { } keyHeader)
            {
                message.Headers.TryAddWithoutValidation(keyHeader, key);
            }
            else
            {
                message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            }
        }

        return message;
    }

    /// <summary>A JSON body serialized with the gateway's source-generated type information.</summary>
    public static ByteArrayContent Json<T>(T body, JsonTypeInfo<T> type) =>
        new(JsonSerializer.SerializeToUtf8Bytes(body, type)) { Headers = { ContentType = JsonMediaType } };

    /// <summary>A JSON body already serialized.</summary>
    public static ByteArrayContent Json(byte[] body) => new(body) { Headers = { ContentType = JsonMediaType } };

    /// <summary>
    /// Sends one attempt. The provider's <see cref="ProviderOptions.Timeout"/> bounds the time until the response headers
    /// arrive (504 <c>provider_timeout</c>, on the injected clock); a transport failure is a 502 <c>provider_unreachable</c>;
    /// both retryable. The caller's token cancels it at any time, and its cancellation is never taken for a timeout.
    /// </summary>
    /// <remarks>
    /// With the provider's <see cref="ProviderContext.Authenticator"/>, the request is authenticated first; an answer that
    /// refuses the credential (a 401, or what <see cref="IUpstreamAuthenticator.IsCredentialRefused"/> says) to a request
    /// whose body can be sent again (none, or bytes) is retried once, as a copy authenticated with
    /// <see cref="UpstreamAuthContext.Unauthorized"/> set.
    /// </remarks>
    public ValueTask<HttpResponseMessage> SendAsync(ProviderContext context, HttpRequestMessage message, CancellationToken cancellationToken) =>
        context.Authenticator is { } authenticator
            ? SendAuthenticatedAsync(context, authenticator, message, cancellationToken)
            : SendOnceAsync(context, message, cancellationToken);

    private async ValueTask<HttpResponseMessage> SendAuthenticatedAsync(ProviderContext context, IUpstreamAuthenticator authenticator, HttpRequestMessage message, CancellationToken cancellationToken)
    {
        await AuthenticateAsync(context, authenticator, message, unauthorized: false, cancellationToken).ConfigureAwait(false);
        var response = await SendOnceAsync(context, message, cancellationToken).ConfigureAwait(false);
        if (!authenticator.IsCredentialRefused(response) || message.Content is not (null or ByteArrayContent))
        {
            return response;
        }

        response.Dispose();
        // The same message cannot be sent twice; its copy shares the body (bytes, readable again) and is not disposed, so
        // the caller's disposal of the original still releases the body once.
        var again = new HttpRequestMessage(message.Method, message.RequestUri) { Version = message.Version, VersionPolicy = message.VersionPolicy, Content = message.Content };
        foreach (var header in message.Headers)
        {
            again.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        // Bedrock native batches (bbatch): request options (e.g. the SigV4 service an S3 request is signed for) go along.
        foreach (var (name, value) in message.Options)
        {
            ((IDictionary<string, object?>)again.Options)[name] = value;
        }

        await AuthenticateAsync(context, authenticator, again, unauthorized: true, cancellationToken).ConfigureAwait(false);
        return await SendOnceAsync(context, again, cancellationToken).ConfigureAwait(false);
    }

    private static async ValueTask AuthenticateAsync(ProviderContext context, IUpstreamAuthenticator authenticator, HttpRequestMessage message, bool unauthorized, CancellationToken cancellationToken)
    {
        try
        {
            await authenticator.AuthenticateAsync(message, new UpstreamAuthContext(context, unauthorized), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not BifrostException and not OperationCanceledException)
        {
            throw Retryable(502, "upstream_auth_failed", $"Provider '{context.ProviderName}' could not authenticate its upstream request ({ex.GetType().Name}: {ex.Message}).", ex);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<HttpResponseMessage> SendOnceAsync(ProviderContext context, HttpRequestMessage message, CancellationToken cancellationToken)
    {
        var invoker = _invoker ?? CreateInvoker();
        // The timeout ends with this call: the handlers return once the headers are read, and a stream's body is bounded
        // by its own first-chunk deadline (UntilFirstChunk).
        using var deadline = new AttemptDeadline(context, _time, cancellationToken);
        try
        {
            // The named client's handler pipeline returns once the headers are read (the content is not buffered), as
            // HttpClient does with ResponseHeadersRead; through HttpClient only when the factory cannot give the handler.
            return await (_client is { } client ? client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, deadline.Token) : invoker.SendAsync(message, deadline.Token)).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (deadline.Expired && !cancellationToken.IsCancellationRequested)
        {
            throw Retryable(504, "provider_timeout", $"Provider '{context.ProviderName}' did not answer within {context.Options.Timeout}.", ex);
        }
        catch (HttpRequestException ex)
        {
            throw Retryable(502, "provider_unreachable", $"Provider '{context.ProviderName}' could not be reached: {ex.Message}", ex);
        }
    }

    /// <summary><see cref="SendAsync"/>, then the upstream's error answer thrown as its <see cref="BifrostException"/>.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<HttpResponseMessage> SendSuccessAsync(ProviderContext context, HttpRequestMessage message, CancellationToken cancellationToken)
    {
        var response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            throw await ReadErrorAsync(response, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sends <paramref name="message"/> (and disposes it) and reads the JSON answer: an error answer is thrown, an empty or
    /// invalid body is a 502 <c>invalid_provider_response</c>.
    /// </summary>
    public async Task<T> SendForJsonAsync<T>(ProviderContext context, HttpRequestMessage message, JsonTypeInfo<T> type, CancellationToken cancellationToken)
        where T : class
    {
        using (message)
        {
            using var response = await SendSuccessAsync(context, message, cancellationToken).ConfigureAwait(false);
            try
            {
                await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                return await BufferedJson.DeserializeAsync(body, response.Content.Headers.ContentLength, type, cancellationToken).ConfigureAwait(false)
                    ?? throw UpstreamHttp.InvalidResponse(context, "an empty body");
            }
            catch (JsonException ex)
            {
                throw UpstreamHttp.InvalidResponse(context, $"invalid JSON ({ex.Message})");
            }
        }
    }

    /// <summary>An error answer as the exception the adapter's parser makes of it, from at most <see cref="UpstreamHttp.MaxErrorBodyBytes"/> of its body, with its Retry-After.</summary>
    public async Task<BifrostException> ReadErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        var retryAfter = UpstreamHttp.ParseRetryAfter(response, _time);
        var text = await UpstreamHttp.ReadErrorTextAsync(response, cancellationToken).ConfigureAwait(false);
        return _parseError(new UpstreamError(status, response.ReasonPhrase, text, retryAfter));
    }

    /// <summary>
    /// The first-chunk timeout of a stream: the attempt's timeout lasts until the stream's first chunk, since a server may send
    /// its headers at once and then stall. Read the stream with its <see cref="AttemptDeadline.Token"/> and call
    /// <see cref="AttemptDeadline.Disarm"/> on each chunk; once one has arrived, the stream may take as long as it takes.
    /// </summary>
    public AttemptDeadline UntilFirstChunk(ProviderContext context, CancellationToken cancellationToken) =>
        new(context, _time, cancellationToken);

    /// <summary>Releases the invoker (the handler itself belongs to the factory).</summary>
    public void Dispose() => _invoker?.Dispose();

    private static BifrostException Retryable(int status, string code, string message, Exception inner) =>
        new(new BifrostError { StatusCode = status, Error = new BifrostErrorDetail { Type = "api_error", Code = code, Message = message } }, inner) { IsRetryable = true };

    /// <summary>
    /// The named client's handler pipeline (primary handler and any handlers added to the named client), called through an
    /// <see cref="HttpMessageInvoker"/>: HttpClient's own layer (a linked CancellationTokenSource and a state machine per
    /// request) adds nothing here, since its timeout is infinite and every request is built by the adapter. The handler
    /// never expires (SetHandlerLifetime(Infinite); SocketsHttpHandler recycles its connections), so it is kept; a race
    /// only creates a second invoker over the same handler.
    /// </summary>
    private HttpMessageInvoker CreateInvoker()
    {
        if (_factory is IHttpMessageHandlerFactory handlers)
        {
            return _invoker = new HttpMessageInvoker(handlers.CreateHandler(_name), disposeHandler: false);
        }

        return _invoker = _client = _factory.CreateClient(_name);
    }
}
