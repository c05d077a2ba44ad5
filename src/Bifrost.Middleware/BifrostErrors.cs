namespace Bifrost.Middleware;

/// <summary>
/// The errors Bifrost raises, by name: the internal way to make a <see cref="BifrostException"/>. Each factory fixes
/// the status and the OpenAI error type that go with it, so the wire stays the same wherever an error is raised;
/// callers give the code, the message and the parameter at fault. <see cref="BifrostException.Gateway"/> and
/// <see cref="BifrostException.Provider"/> stay public for plugin and adapter authors.
/// </summary>
internal static class BifrostErrors
{
    /// <summary>OpenAI's error type of a request the gateway refuses (also used by OpenAI for 404 and 409).</summary>
    public const string InvalidRequestType = "invalid_request_error";

    /// <summary>OpenAI's error type of a server-side failure.</summary>
    public const string ApiErrorType = "api_error";

    /// <summary>The error type of a 413 answered for the request as a whole (body or quota).</summary>
    public const string RequestTooLargeType = "request_too_large";

    /// <summary>OpenAI's error type of a 429.</summary>
    public const string RateLimitType = "rate_limit_error";

    /// <summary>A 400 <c>invalid_request_error</c> with <paramref name="code"/>.</summary>
    public static BifrostException InvalidRequest(string code, string message, string? param = null) =>
        BifrostException.Gateway(400, InvalidRequestType, code, message, param);

    /// <summary>A 400 <c>invalid_value</c>: the parameter is present but its value is not accepted.</summary>
    public static BifrostException InvalidValue(string message, string? param) => InvalidRequest("invalid_value", message, param);

    /// <summary>A 400 <c>invalid_type</c>: the parameter has the wrong JSON type.</summary>
    public static BifrostException InvalidType(string message, string? param) => InvalidRequest("invalid_type", message, param);

    /// <summary>A 400 <c>missing_required_parameter</c>.</summary>
    public static BifrostException MissingParameter(string message, string param) => InvalidRequest("missing_required_parameter", message, param);

    /// <summary>A 400 <c>unsupported_parameter</c>: a parameter this path cannot honour.</summary>
    public static BifrostException UnsupportedParameter(string message, string? param) => InvalidRequest("unsupported_parameter", message, param);

    /// <summary>A 400 <c>unsupported_operation</c>: an operation this provider or gateway does not offer.</summary>
    public static BifrostException UnsupportedOperation(string message, string? param = null) => InvalidRequest("unsupported_operation", message, param);

    /// <summary>A 404 <c>invalid_request_error</c> (OpenAI's type for a missing object) with <paramref name="code"/>.</summary>
    public static BifrostException NotFound(string code, string message, string? param = null) =>
        BifrostException.Gateway(404, InvalidRequestType, code, message, param);

    /// <summary>A 405 <c>method_not_allowed</c>.</summary>
    public static BifrostException MethodNotAllowed(string message) =>
        BifrostException.Gateway(405, InvalidRequestType, "method_not_allowed", message);

    /// <summary>A 409 <c>invalid_request_error</c>: the object's state does not allow the request.</summary>
    public static BifrostException Conflict(string code, string message, string? param = null) =>
        BifrostException.Gateway(409, InvalidRequestType, code, message, param);

    /// <summary>A 413 <c>request_too_large</c>: the request (its body, or what the caller may still store) is too large.</summary>
    public static BifrostException TooLarge(string code, string message, string? param = null) =>
        BifrostException.Gateway(413, RequestTooLargeType, code, message, param);

    /// <summary>
    /// The 413 of a file store: the file is over the limit it was given (type <c>invalid_request_error</c>, code
    /// <c>file_too_large</c>, param <c>file</c>); nothing of it is kept.
    /// </summary>
    public static BifrostException FileTooLarge(long maxBytes) =>
        BifrostException.Gateway(413, InvalidRequestType, "file_too_large", $"The file is larger than the limit of {maxBytes} bytes.", "file");

    /// <summary>A 429 <c>rate_limit_error</c> with a <c>Retry-After</c>: retryable.</summary>
    public static BifrostException TooManyRequests(string code, string message, TimeSpan retryAfter) =>
        new(new BifrostError
        {
            IsBifrostError = true,
            StatusCode = 429,
            Error = new BifrostErrorDetail { Type = RateLimitType, Code = code, Message = message },
        })
        {
            RetryAfter = retryAfter,
            IsRetryable = true,
        };

    /// <summary>A 499 <c>job_cancelled</c>: the caller cancelled the job.</summary>
    public static BifrostException JobCancelled() =>
        BifrostException.Gateway(499, InvalidRequestType, "job_cancelled", "The job was cancelled.");

    /// <summary>A 500 <c>api_error</c>: the gateway failed (the details are logged, not sent).</summary>
    public static BifrostException Internal(string code, string message) =>
        BifrostException.Gateway(500, ApiErrorType, code, message);

    /// <summary>A 504 <c>api_error</c> raised by the gateway: the work ran past a deadline of the gateway's own.</summary>
    public static BifrostException Timeout(string code, string message) =>
        BifrostException.Gateway(504, ApiErrorType, code, message);

    /// <summary>An error the provider returned (<c>is_bifrost_error: false</c>), passed through.</summary>
    public static BifrostException ProviderError(int statusCode, string? type, string? code, string message, string? param = null, TimeSpan? retryAfter = null) =>
        BifrostException.Provider(statusCode, type, code, message, param, retryAfter);

    /// <summary>A 502 <c>invalid_provider_response</c>: the provider answered something that cannot be read.</summary>
    public static BifrostException InvalidProviderResponse(string message) =>
        BifrostException.Provider(502, ApiErrorType, "invalid_provider_response", message);

    /// <summary>The server's own limits met while reading a body (413 body too large, 400 a client too slow or a malformed request).</summary>
    public static BifrostException ServerLimit(Microsoft.AspNetCore.Http.BadHttpRequestException exception) => exception.StatusCode == 413
        ? TooLarge("request_too_large", exception.Message)
        : BifrostException.Gateway(exception.StatusCode, InvalidRequestType, "bad_request", exception.Message);

    /// <summary>Sets <c>extra_fields.request_type</c> on the error (replacing any extra fields) and returns it.</summary>
    public static BifrostException WithRequestType(this BifrostException exception, string requestType)
    {
        exception.Error.ExtraFields = new BifrostExtraFields { RequestType = requestType };
        return exception;
    }
}
