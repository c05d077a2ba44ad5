namespace Bifrost.Middleware;

/// <summary>
/// Thrown by <see cref="IBifrostClient"/> and by provider adapters for any failure that has an answer
/// for the caller: a validation or routing error of the gateway, or an error returned by the provider.
/// The endpoints turn it into the Bifrost error shape with <see cref="StatusCode"/>.
/// </summary>
public sealed class BifrostException : Exception
{
    /// <summary>Creates an exception for an error answer.</summary>
    /// <param name="error">The error, in the Bifrost shape. A status that is not an HTTP error status (4xx/5xx) is
    /// replaced by 502 (0, -1, 999, 1xx–3xx).</param>
    /// <param name="innerException">The underlying exception, if any.</param>
    public BifrostException(BifrostError error, Exception? innerException = null)
        : base(error?.Error.Message, innerException)
    {
        Error = error ?? throw new ArgumentNullException(nameof(error));
        error.StatusCode = ErrorStatus(error.StatusCode);
    }

    /// <summary>The error, in the Bifrost shape.</summary>
    public BifrostError Error { get; }

    /// <summary>The HTTP status code of the error: always 400–599.</summary>
    public int StatusCode => ErrorStatus(Error.StatusCode);

    /// <summary>
    /// The status an error is answered with: a 4xx or 5xx as it is; anything else a provider or a script may report
    /// (0, -1, 999, or a 1xx/2xx/3xx on an error) becomes 502 Bad Gateway, so that sync answers, stream error events,
    /// async job outcomes and batch error lines all carry a valid error status.
    /// </summary>
    /// <param name="statusCode">The reported status.</param>
    internal static int ErrorStatus(int statusCode) => statusCode is >= 400 and <= 599 ? statusCode : 502;

    /// <summary>How long the provider asked the caller to wait (its <c>Retry-After</c>), if it said.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>
    /// Whether another attempt (a retry or a fallback) may succeed: 408, 429, 5xx, timeouts and connection failures.
    /// Defaults from <see cref="StatusCode"/>.
    /// </summary>
    public bool IsRetryable { get; init; }

    /// <summary>Creates an error raised by the gateway itself (<c>is_bifrost_error: true</c>).</summary>
    /// <param name="statusCode">HTTP status.</param>
    /// <param name="type">OpenAI error type, e.g. <c>invalid_request_error</c>.</param>
    /// <param name="code">Machine-readable code.</param>
    /// <param name="message">Human-readable message.</param>
    /// <param name="param">The parameter at fault.</param>
    public static BifrostException Gateway(int statusCode, string type, string? code, string message, string? param = null)
    {
        statusCode = ErrorStatus(statusCode);
        return new(new BifrostError
        {
            IsBifrostError = true,
            StatusCode = statusCode,
            Error = new BifrostErrorDetail { Type = type, Code = code, Message = message, Param = param },
        })
        {
            IsRetryable = IsRetryableStatus(statusCode),
        };
    }

    /// <summary>
    /// The 400 for a body that does not read as the route's request: one answer on every path that reads a request
    /// (HTTP bodies, async submits, batch lines), naming the JSON path at fault.
    /// </summary>
    internal static BifrostException InvalidJson(System.Text.Json.JsonException exception) =>
        BifrostErrors.InvalidRequest("invalid_json", $"The request body is not valid JSON for this route: {exception.Message}", exception.Path is { Length: > 1 } path ? path.TrimStart('$', '.') : null);

    /// <summary>Creates an error returned by a provider (<c>is_bifrost_error: false</c>), passing its status and message through.</summary>
    /// <param name="statusCode">The provider's HTTP status (anything but a 4xx/5xx: 502).</param>
    /// <param name="type">The provider's error type.</param>
    /// <param name="code">The provider's error code.</param>
    /// <param name="message">The provider's message.</param>
    /// <param name="param">The parameter at fault.</param>
    /// <param name="retryAfter">The provider's Retry-After, if any.</param>
    public static BifrostException Provider(int statusCode, string? type, string? code, string message, string? param = null, TimeSpan? retryAfter = null)
    {
        statusCode = ErrorStatus(statusCode);
        return new(new BifrostError
        {
            IsBifrostError = false,
            StatusCode = statusCode,
            Error = new BifrostErrorDetail { Type = type ?? DefaultType(statusCode), Code = code, Message = message, Param = param },
        })
        {
            RetryAfter = retryAfter,
            IsRetryable = IsRetryableStatus(statusCode),
        };
    }

    /// <summary>Whether an HTTP status is worth another attempt (408, 409, 429, 5xx).</summary>
    /// <param name="statusCode">The status.</param>
    public static bool IsRetryableStatus(int statusCode) => statusCode is 408 or 409 or 429 or >= 500;

    internal static string DefaultType(int statusCode) => statusCode switch
    {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        >= 500 => "api_error",
        _ => "invalid_request_error",
    };
}
