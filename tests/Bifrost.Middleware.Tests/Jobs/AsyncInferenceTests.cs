using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>Submit → poll pending → poll completed, through the x-bf-async headers and the job-envelope routes.</summary>
public sealed class AsyncInferenceTests
{
    [Fact]
    public async Task Header_submit_answers_at_once_then_polls_pending_then_the_sync_result()
    {
        await using var host = await GatewayHost.StartAsync();
        var body = ChatBody("Ping from the async test", metadata: ("local_delay_ms", "1500"));

        // The synchronous call of the same request, run alongside: the reference result.
        var syncTask = host.PostJsonAsync(ChatPath, body, Ct);

        // The submit answers at once (the provider takes 1.5 s): the polls right after it still see the empty shape,
        // by POST with no body and by GET.
        var id = await host.SubmitAsync(body);
        using (var pending = await host.SendAsync(HttpMethod.Post, ChatPath, null, ("x-bf-async-id", id)))
        {
            Assert.Equal(HttpStatusCode.OK, pending.StatusCode);
            AssertPendingShape(await ReadAsync(pending), id);
        }

        using (var pending = await host.SendAsync(HttpMethod.Get, ChatPath, null, ("x-bf-async-id", id)))
        {
            Assert.Equal(HttpStatusCode.OK, pending.StatusCode);
            AssertPendingShape(await ReadAsync(pending), id);
        }

        using var sync = await syncTask;
        Assert.Equal(HttpStatusCode.OK, sync.StatusCode);
        var expected = await ReadAsync(sync);

        var (status, completed) = await host.PollUntilFinishedAsync(id);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Ping from the async test", completed.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var extra = completed.GetProperty("extra_fields");
        Assert.Equal("local", extra.GetProperty("provider").GetString());
        Assert.Equal("echo", extra.GetProperty("model_requested").GetString());
        Assert.Equal("chat_completion", extra.GetProperty("request_type").GetString());
        Assert.Equal(expected.GetProperty("usage").GetRawText(), completed.GetProperty("usage").GetRawText());
        AssertSameJson(WithoutVolatileFields(expected), WithoutVolatileFields(completed));

        // The stored result is served as is: GET with the header gives the very same document.
        using var byGet = await host.SendAsync(HttpMethod.Get, ChatPath, null, ("x-bf-async-id", id));
        Assert.Equal(HttpStatusCode.OK, byGet.StatusCode);
        AssertSameJson(completed, await ReadAsync(byGet));
    }

    [Fact]
    public async Task Envelope_submit_answers_202_and_the_envelope_goes_from_pending_to_completed()
    {
        await using var host = await GatewayHost.StartAsync();
        var body = ChatBody("Envelope please", metadata: ("local_delay_ms", "1500"));
        var syncTask = host.PostJsonAsync(ChatPath, body, Ct);

        using var accepted = await host.SendAsync(HttpMethod.Post, EnvelopePath, body, ("x-bf-async-job-result-ttl", "120"));
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var submitted = await ReadAsync(accepted);
        var id = submitted.GetProperty("id").GetString()!;
        Assert.False(string.IsNullOrEmpty(id));
        Assert.Equal("pending", submitted.GetProperty("status").GetString());
        var createdAt = Rfc3339(submitted.GetProperty("created_at"));
        Assert.InRange(createdAt, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));

        var pending = await host.EnvelopeAsync(id);
        Assert.Equal(id, pending.GetProperty("id").GetString());
        Assert.Contains(pending.GetProperty("status").GetString(), new[] { "pending", "processing" });
        Assert.Equal(createdAt, Rfc3339(pending.GetProperty("created_at")));
        foreach (var name in new[] { "completed_at", "expires_at", "status_code", "result", "error" })
        {
            Assert.Equal(JsonValueKind.Null, pending.GetProperty(name).ValueKind);
        }

        using var sync = await syncTask;
        var expected = await ReadAsync(sync);

        var done = await host.EnvelopeUntilFinishedAsync(id);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        Assert.Equal(200, done.GetProperty("status_code").GetInt32());
        Assert.Equal(JsonValueKind.Null, done.GetProperty("error").ValueKind);
        var result = done.GetProperty("result");
        Assert.Equal("Envelope please", result.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        AssertSameJson(WithoutVolatileFields(expected), WithoutVolatileFields(result));

        var completedAt = Rfc3339(done.GetProperty("completed_at"));
        var expiresAt = Rfc3339(done.GetProperty("expires_at"));
        Assert.True(completedAt >= createdAt);
        Assert.Equal(TimeSpan.FromSeconds(120), expiresAt - completedAt);

        // Submitted by the envelope route, readable by the header on the chat route: the same result.
        using var byHeader = await host.SendAsync(HttpMethod.Get, ChatPath, null, ("x-bf-async-id", id));
        Assert.Equal(HttpStatusCode.OK, byHeader.StatusCode);
        AssertSameJson(result, await ReadAsync(byHeader));
    }

    [Fact]
    public async Task A_job_submitted_by_header_is_readable_on_the_envelope_route_with_the_default_ttl()
    {
        await using var host = await GatewayHost.StartAsync(o => o.Jobs.ResultTtl = TimeSpan.FromMinutes(7));
        var id = await host.SubmitAsync(ChatBody("Header then envelope"));

        var (status, completion) = await host.PollUntilFinishedAsync(id);
        Assert.Equal(HttpStatusCode.OK, status);

        // Also without the /v1 segment.
        using var response = await host.SendAsync(HttpMethod.Get, $"/openai/async/chat/completions/{id}", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var envelope = await ReadAsync(response);
        Assert.Equal(id, envelope.GetProperty("id").GetString());
        Assert.Equal("completed", envelope.GetProperty("status").GetString());
        Assert.Equal(200, envelope.GetProperty("status_code").GetInt32());
        AssertSameJson(completion, envelope.GetProperty("result"));
        Assert.Equal(TimeSpan.FromMinutes(7), Rfc3339(envelope.GetProperty("expires_at")) - Rfc3339(envelope.GetProperty("completed_at")));
    }
}
