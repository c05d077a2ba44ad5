using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>
/// The status codes of the async routes for every job state, on every inference route, from jobs placed in the store in
/// that state: the <c>v1/async/{route}/{id}</c> envelope answers 202 while pending or processing and 200 once completed
/// or failed (Bifrost's async handler); the <c>x-bf-async-id</c> poll answers 200 with the route's pending shape, then
/// the stored body with its own status (Bifrost's integration router). Stored results are written byte for byte.
/// </summary>
public sealed class AsyncEnvelopeStatusTests
{
    private static readonly DateTimeOffset Start = new(2031, 3, 1, 12, 0, 0, TimeSpan.Zero);

    public static TheoryData<string, string> Routes => new()
    {
        { "chat/completions", "chat_completion" },
        { "completions", "text_completion" },
        { "embeddings", "embedding" },
        { "responses", "responses" },
    };

    private static string Payload(string route) => route switch
    {
        "chat/completions" => ChatBody("hi"),
        "completions" => """{"model":"local/echo","prompt":"hi"}""",
        "embeddings" => """{"model":"local/echo","input":"hi"}""",
        _ => """{"model":"local/echo","input":"hi"}""",
    };

    /// <summary>A result body the gateway must hand back untouched (odd spacing and key order, unicode, escapes).</summary>
    private const string StoredResult = """{ "id":"stored-1","object":"x" ,"text":"h\u00e9llo \"quoted\"", "n":[1,2.50,3e2] }""";

    private const string StoredError = """{"is_bifrost_error":false,"status_code":403,"error":{"type":"permission_error","message":"nope"}}""";

    /// <summary>A store holding one job of <paramref name="kind"/> in each state (ids job-pending, job-processing, job-completed, job-failed).</summary>
    private static async Task<InMemoryJobStore> StoreWithEveryStateAsync(TimeProvider time, string kind, string owner, string payload)
    {
        var store = new InMemoryJobStore(time);
        var bytes = Encoding.UTF8.GetBytes(payload);
        async Task<JobLease> AddAndClaimAsync(string id)
        {
            await store.EnqueueAsync(new NewJob { Id = id, Kind = kind, Owner = owner, Payload = bytes, ResultTtl = TimeSpan.FromDays(1) }, Ct);
            var lease = await store.TryClaimAsync("test", TimeSpan.FromDays(1), Ct);
            Assert.Equal(id, lease!.JobId);
            return lease;
        }

        // Pending: released with a backoff far in the future, so no worker takes it during the test.
        Assert.True(await store.ReleaseAsync(await AddAndClaimAsync("job-pending"), time.GetUtcNow().AddDays(1), countAttempt: false, Ct));

        // Processing: held by a worker with a day-long lease.
        await AddAndClaimAsync("job-processing");

        Assert.True(await store.CompleteAsync(await AddAndClaimAsync("job-completed"), new JobOutcome(200, Encoding.UTF8.GetBytes(StoredResult)), Ct));
        Assert.True(await store.FailAsync(await AddAndClaimAsync("job-failed"), new JobOutcome(403, Encoding.UTF8.GetBytes(StoredError)), Ct));
        return store;
    }

    private static async Task<GatewayHost> StartAsync(string kind, string route)
    {
        var time = new FakeTimeProvider(Start);
        var owner = (await GatewayHost.StartAsync()).AnonymousOwnerAndDispose();
        var store = await StoreWithEveryStateAsync(time, kind, owner, Payload(route));
        return await GatewayHost.StartAsync(services: s => s.AddSingleton<TimeProvider>(time).AddSingleton<IJobStore>(store));
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task The_envelope_is_202_while_pending_or_processing_and_200_once_completed_or_failed(string route, string kind)
    {
        await using var host = await StartAsync(kind, route);
        foreach (var (id, status, code) in new[] { ("job-pending", "pending", 202), ("job-processing", "processing", 202), ("job-completed", "completed", 200), ("job-failed", "failed", 200) })
        {
            using var response = await host.SendAsync(HttpMethod.Get, $"/openai/v1/async/{route}/{id}", null);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True((int)response.StatusCode == code, $"{route} {status}: {(int)response.StatusCode} {text}");
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            var json = JsonDocument.Parse(text).RootElement;
            Assert.Equal(id, json.GetProperty("id").GetString());
            Assert.Equal(status, json.GetProperty("status").GetString());
            Rfc3339(json.GetProperty("created_at"));
            switch (status)
            {
                case "completed":
                    Assert.Equal(200, json.GetProperty("status_code").GetInt32());
                    Assert.Equal(JsonValueKind.Null, json.GetProperty("error").ValueKind);
                    Assert.Contains("\"result\":" + StoredResult + ",", text, StringComparison.Ordinal); // raw, untouched
                    Rfc3339(json.GetProperty("completed_at"));
                    Rfc3339(json.GetProperty("expires_at"));
                    break;
                case "failed":
                    Assert.Equal(403, json.GetProperty("status_code").GetInt32());
                    Assert.Equal(JsonValueKind.Null, json.GetProperty("result").ValueKind);
                    Assert.Contains("\"error\":" + StoredError + "}", text, StringComparison.Ordinal);
                    break;
                default:
                    Assert.Equal(JsonValueKind.Null, json.GetProperty("status_code").ValueKind);
                    Assert.Equal(JsonValueKind.Null, json.GetProperty("result").ValueKind);
                    Assert.Equal(JsonValueKind.Null, json.GetProperty("error").ValueKind);
                    Assert.Equal(JsonValueKind.Null, json.GetProperty("completed_at").ValueKind);
                    break;
            }
        }

        using var unknown = await host.SendAsync(HttpMethod.Get, $"/openai/v1/async/{route}/job-unknown", null);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task The_x_bf_async_id_poll_is_200_with_the_pending_shape_then_the_stored_body_with_its_status(string route, string kind)
    {
        await using var host = await StartAsync(kind, route);
        foreach (var id in new[] { "job-pending", "job-processing" })
        {
            using var response = await host.SendAsync(HttpMethod.Post, "/openai/v1/" + route, "{}", ("x-bf-async-id", id));
            var json = await ReadAsync(response);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{route} {id}: {(int)response.StatusCode} {json}");
            var empty = route switch { "responses" => "output", "embeddings" => "data", _ => "choices" };
            Assert.Equal(0, json.GetProperty(empty).GetArrayLength());
        }

        using (var completed = await host.SendAsync(HttpMethod.Get, "/openai/v1/" + route, null, ("x-bf-async-id", "job-completed")))
        {
            Assert.Equal(HttpStatusCode.OK, completed.StatusCode);
            Assert.Equal(StoredResult, await completed.Content.ReadAsStringAsync(Ct));
        }

        using var failed = await host.SendAsync(HttpMethod.Post, "/openai/v1/" + route, "{}", ("x-bf-async-id", "job-failed"));
        Assert.Equal(HttpStatusCode.Forbidden, failed.StatusCode);
        Assert.Equal(StoredError, await failed.Content.ReadAsStringAsync(Ct));
    }
}

internal static class OwnerKit
{
    /// <summary>The anonymous owner of a host's default resolver (read from a throwaway host).</summary>
    public static string AnonymousOwnerAndDispose(this GatewayHost host)
    {
        try
        {
            return host.AnonymousOwner();
        }
        finally
        {
            host.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}

/// <summary>Many clients reading one large stored result at once all get the whole, identical body (streamed from the store).</summary>
public sealed class AsyncConcurrentReadTests
{
    [Fact]
    public async Task Forty_concurrent_polls_of_a_large_result_return_identical_full_bodies()
    {
        // A ~300 KB chat completion whose content has every printable ASCII character and JSON escapes.
        var text = string.Concat(Enumerable.Repeat("abc \"q\" \\ / é ü 😀 {x:[1,2]}\n", 8_000));
        var adapter = new ScriptedAdapter((_, context, _) => Task.FromResult(Reply(context, text)));
        await using var host = await GatewayHost.StartAsync(bifrost: b => b.AddProvider("big", _ => adapter));
        var id = await host.SubmitAsync(ChatBody("big", "big/m"));
        var (status, completed) = await host.PollUntilFinishedAsync(id);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(text, completed.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var expected = completed.GetRawText();

        var bodies = await Task.WhenAll(Enumerable.Range(0, 40).Select(async i =>
        {
            if (i % 2 == 0)
            {
                using var poll = await host.PollAsync(id);
                Assert.Equal(HttpStatusCode.OK, poll.StatusCode);
                return ("poll", await poll.Content.ReadAsStringAsync(Ct));
            }

            using var envelope = await host.SendAsync(HttpMethod.Get, $"{EnvelopePath}/{id}", null);
            Assert.Equal(HttpStatusCode.OK, envelope.StatusCode);
            return ("envelope", await envelope.Content.ReadAsStringAsync(Ct));
        }));

        var polls = bodies.Where(b => b.Item1 == "poll").Select(b => b.Item2).ToList();
        var envelopes = bodies.Where(b => b.Item1 == "envelope").Select(b => b.Item2).ToList();
        Assert.Equal(20, polls.Count);
        Assert.All(polls, body => Assert.True(string.Equals(expected, body, StringComparison.Ordinal), "a poll answered another body"));
        Assert.All(envelopes, body => Assert.True(string.Equals(envelopes[0], body, StringComparison.Ordinal), "an envelope answered another body"));
        using var envelopeJson = JsonDocument.Parse(envelopes[0]);
        Assert.Equal(expected, envelopeJson.RootElement.GetProperty("result").GetRawText());
    }
}
