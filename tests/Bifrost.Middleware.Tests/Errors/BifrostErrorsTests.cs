using System.Text.Json;
using Bifrost.Middleware.Serialization;

namespace Bifrost.Middleware.Tests.Errors;

/// <summary>The named error factories give the wire shape the string-typed calls they replace gave: status, type, code, param.</summary>
public sealed class BifrostErrorsTests
{
    public static TheoryData<string, int, string, string?, string?> Cases() => new()
    {
        { "invalid_request", 400, "invalid_request_error", "invalid_request", "p" },
        { "invalid_value", 400, "invalid_request_error", "invalid_value", "p" },
        { "invalid_type", 400, "invalid_request_error", "invalid_type", "p" },
        { "missing", 400, "invalid_request_error", "missing_required_parameter", "p" },
        { "unsupported_parameter", 400, "invalid_request_error", "unsupported_parameter", "p" },
        { "unsupported_operation", 400, "invalid_request_error", "unsupported_operation", null },
        { "not_found", 404, "invalid_request_error", "file_not_found", "file_id" },
        { "method", 405, "invalid_request_error", "method_not_allowed", null },
        { "conflict", 409, "invalid_request_error", "file_in_use", "file_id" },
        { "too_large", 413, "request_too_large", "owner_storage_full", "file" },
        { "file_too_large", 413, "invalid_request_error", "file_too_large", "file" },
        { "cancelled", 499, "invalid_request_error", "job_cancelled", null },
        { "internal", 500, "api_error", "internal_error", null },
        { "timeout", 504, "api_error", "job_timeout", null },
    };

    private static BifrostException Make(string factory) => factory switch
    {
        "invalid_request" => BifrostErrors.InvalidRequest("invalid_request", "m", "p"),
        "invalid_value" => BifrostErrors.InvalidValue("m", "p"),
        "invalid_type" => BifrostErrors.InvalidType("m", "p"),
        "missing" => BifrostErrors.MissingParameter("m", "p"),
        "unsupported_parameter" => BifrostErrors.UnsupportedParameter("m", "p"),
        "unsupported_operation" => BifrostErrors.UnsupportedOperation("m"),
        "not_found" => BifrostErrors.NotFound("file_not_found", "m", "file_id"),
        "method" => BifrostErrors.MethodNotAllowed("m"),
        "conflict" => BifrostErrors.Conflict("file_in_use", "m", "file_id"),
        "too_large" => BifrostErrors.TooLarge("owner_storage_full", "m", "file"),
        "file_too_large" => BifrostErrors.FileTooLarge(10),
        "cancelled" => BifrostErrors.JobCancelled(),
        "internal" => BifrostErrors.Internal("internal_error", "m"),
        "timeout" => BifrostErrors.Timeout("job_timeout", "m"),
        _ => throw new ArgumentOutOfRangeException(nameof(factory)),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_named_factory_gives_the_same_error_as_the_gateway_call_it_replaces(string factory, int status, string type, string? code, string? param)
    {
        var error = Make(factory);
        var expected = BifrostException.Gateway(status, type, code, error.Error.Error.Message, param);

        Assert.Equal(status, error.StatusCode);
        Assert.Equal(expected.IsRetryable, error.IsRetryable);
        Assert.Null(error.RetryAfter);
        Assert.Equal(Json(expected), Json(error));
        var json = JsonDocument.Parse(Json(error)).RootElement;
        Assert.True(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(type, json.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public void TooManyRequests_is_a_retryable_429_with_its_retry_after()
    {
        var error = BifrostErrors.TooManyRequests("job_queue_full", "full", TimeSpan.FromSeconds(5));

        Assert.Equal(429, error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.Equal(TimeSpan.FromSeconds(5), error.RetryAfter);
        Assert.Equal(
            """{"is_bifrost_error":true,"status_code":429,"error":{"type":"rate_limit_error","code":"job_queue_full","message":"full"}}""",
            Json(error));
    }

    [Fact]
    public void Provider_factories_are_not_bifrost_errors_and_WithRequestType_sets_extra_fields()
    {
        var error = BifrostErrors.InvalidProviderResponse("bad").WithRequestType("chat_completion");

        Assert.Equal(
            """{"is_bifrost_error":false,"status_code":502,"error":{"type":"api_error","code":"invalid_provider_response","message":"bad"},"extra_fields":{"request_type":"chat_completion"}}""",
            Json(error));
        Assert.True(error.IsRetryable);
        Assert.Equal(Json(BifrostException.Provider(503, null, "c", "m", retryAfter: TimeSpan.FromSeconds(1))), Json(BifrostErrors.ProviderError(503, null, "c", "m", retryAfter: TimeSpan.FromSeconds(1))));
    }

    private static string Json(BifrostException error) => JsonSerializer.Serialize(error.Error, BifrostJson.Context.BifrostError);
}
