using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>Helpers of the async-inference tests: requests with the async headers, polling with a deadline, JSON comparison.</summary>
internal static class AsyncTestKit
{
    public const string ChatPath = "/openai/v1/chat/completions";
    public const string EnvelopePath = "/openai/v1/async/chat/completions";

    /// <summary>How long any "eventually" may take before the test fails.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A chat request body; <paramref name="metadata"/> scripts the local provider (local_delay_ms, local_status, ...).</summary>
    public static string ChatBody(string text, string model = "local/echo", params (string Key, string Value)[] metadata)
    {
        var body = new JsonObject
        {
            ["model"] = model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }),
        };
        if (metadata.Length > 0)
        {
            var meta = new JsonObject();
            foreach (var (key, value) in metadata)
            {
                meta[key] = value;
            }

            body["metadata"] = meta;
        }

        return body.ToJsonString();
    }

    /// <summary>Sends a request; <paramref name="body"/> null sends no content at all.</summary>
    public static Task<HttpResponseMessage> SendAsync(this GatewayHost host, HttpMethod method, string path, string? body, params (string Name, string Value)[] headers) =>
        SendAsync(host.Client, method, path, body, headers);

    public static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, string path, string? body, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        foreach (var (name, value) in headers)
        {
            Assert.True(request.Headers.TryAddWithoutValidation(name, value), $"header {name}");
        }

        return await client.SendAsync(request, Ct);
    }

    /// <summary>Submits with <c>x-bf-async: true</c>, asserts the immediate pending answer and returns the job id.</summary>
    public static async Task<string> SubmitAsync(this GatewayHost host, string body, params (string Name, string Value)[] headers)
    {
        using var response = await host.SendAsync(HttpMethod.Post, ChatPath, body, [("x-bf-async", "true"), .. headers]);
        var json = await ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"submit answered {(int)response.StatusCode}: {json}");
        var id = json.GetProperty("id").GetString();
        Assert.False(string.IsNullOrEmpty(id));
        AssertPendingShape(json, id);
        return id!;
    }

    /// <summary>Polls with <c>x-bf-async-id</c> (POST with an empty JSON body).</summary>
    public static Task<HttpResponseMessage> PollAsync(this GatewayHost host, string id, params (string Name, string Value)[] headers) =>
        host.SendAsync(HttpMethod.Post, ChatPath, "{}", [("x-bf-async-id", id), .. headers]);

    /// <summary>Polls with <c>x-bf-async-id</c> until the answer is no longer the pending shape; returns status and body.</summary>
    public static async Task<(HttpStatusCode Status, JsonElement Body)> PollUntilFinishedAsync(this GatewayHost host, string id, params (string Name, string Value)[] headers)
    {
        var finished = await EventuallyAsync<(HttpStatusCode, JsonElement)?>(
            $"job {id} to finish (x-bf-async-id poll)",
            async () =>
            {
                using var response = await host.PollAsync(id, headers);
                var json = await ReadAsync(response);
                if (response.StatusCode == HttpStatusCode.OK && json.GetProperty("choices").GetArrayLength() == 0)
                {
                    AssertPendingShape(json, id);
                    return null;
                }

                return (response.StatusCode, json);
            });
        return finished!.Value;
    }

    /// <summary>Reads the job envelope: 202 while pending or processing, 200 once finished (asserted against its status).</summary>
    public static async Task<JsonElement> EnvelopeAsync(this GatewayHost host, string id, params (string Name, string Value)[] headers)
    {
        using var response = await host.SendAsync(HttpMethod.Get, $"{EnvelopePath}/{id}", null, headers);
        var json = await ReadAsync(response);
        AssertEnvelopeStatusCode(response, json);
        return json;
    }

    /// <summary>Bifrost's envelope status codes: 202 while the job is pending or processing, 200 once completed or failed.</summary>
    public static void AssertEnvelopeStatusCode(HttpResponseMessage response, JsonElement json)
    {
        var status = json.TryGetProperty("status", out var s) ? s.GetString() : null;
        var expected = status is "pending" or "processing" ? HttpStatusCode.Accepted : HttpStatusCode.OK;
        Assert.True(status is "pending" or "processing" or "completed" or "failed", $"envelope status {status}: {json}");
        Assert.True(response.StatusCode == expected, $"envelope with status {status} answered {(int)response.StatusCode}, expected {(int)expected}: {json}");
    }

    /// <summary>Polls the envelope until its status is final (completed or failed).</summary>
    public static async Task<JsonElement> EnvelopeUntilFinishedAsync(this GatewayHost host, string id, params (string Name, string Value)[] headers)
    {
        var finished = await EventuallyAsync<JsonElement?>(
            $"job {id} to finish (envelope)",
            async () =>
            {
                var json = await host.EnvelopeAsync(id, headers);
                return json.GetProperty("status").GetString() is "completed" or "failed" ? json : null;
            });
        return finished!.Value;
    }

    /// <summary>Waits for a job in the store to reach a state.</summary>
    public static Task<JobRecord> StoreUntilAsync(this IJobStore store, string id, Func<JobRecord, bool> condition, string what) =>
        EventuallyAsync(what, async () => await store.GetAsync(id, Ct) is { } job && condition(job) ? job : null);

    /// <summary>Calls <paramref name="probe"/> until it returns a value, failing after <see cref="Deadline"/>.</summary>
    public static async Task<T> EventuallyAsync<T>(string what, Func<Task<T?>> probe, TimeSpan? deadline = null)
    {
        var until = DateTime.UtcNow + (deadline ?? Deadline);
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            if (DateTime.UtcNow > until)
            {
                Assert.Fail($"Timed out after {(deadline ?? Deadline).TotalSeconds} s waiting for {what}.");
            }

            await Task.Delay(20, Ct);
        }
    }

    public static async Task<JsonElement> ReadAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.False(string.IsNullOrEmpty(text), $"empty body with status {(int)response.StatusCode}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>The pending answer: the route's own shape, <c>chat.completion</c> with the job id and no choices.</summary>
    public static void AssertPendingShape(JsonElement json, string? id)
    {
        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
        if (id is not null)
        {
            Assert.Equal(id, json.GetProperty("id").GetString());
        }

        Assert.Equal(JsonValueKind.Array, json.GetProperty("choices").ValueKind);
        Assert.Equal(0, json.GetProperty("choices").GetArrayLength());
        Assert.False(json.TryGetProperty("usage", out _), "a pending job has no usage");
    }

    /// <summary>Asserts a Bifrost error body.</summary>
    public static void AssertError(JsonElement json, int status, string? code, bool isBifrostError)
    {
        Assert.Equal(status, json.GetProperty("status_code").GetInt32());
        Assert.Equal(isBifrostError, json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.False(string.IsNullOrEmpty(json.GetProperty("error").GetProperty("message").GetString()));
        if (code is not null)
        {
            Assert.Equal(code, json.GetProperty("error").GetProperty("code").GetString());
        }
    }

    /// <summary>A completion without what differs between two calls of the same request (its id, creation time, latency).</summary>
    public static JsonNode WithoutVolatileFields(JsonElement completion)
    {
        var node = JsonNode.Parse(completion.GetRawText())!.AsObject();
        node.Remove("id");
        node.Remove("created");
        node["extra_fields"]?.AsObject().Remove("latency");
        return node;
    }

    public static void AssertSameJson(JsonNode expected, JsonNode actual) =>
        Assert.True(JsonNode.DeepEquals(expected, actual), $"expected\n{expected.ToJsonString()}\nbut got\n{actual.ToJsonString()}");

    public static void AssertSameJson(JsonElement expected, JsonElement actual) =>
        AssertSameJson(JsonNode.Parse(expected.GetRawText())!, JsonNode.Parse(actual.GetRawText())!);

    public static DateTimeOffset Rfc3339(JsonElement value)
    {
        var text = value.GetString();
        Assert.NotNull(text);
        Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", text);
        return DateTimeOffset.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The owner the default resolver gives a request without credentials.</summary>
    public static string AnonymousOwner(this GatewayHost host) =>
        host.Services.GetRequiredService<IJobOwnerResolver>().ResolveOwner(new DefaultHttpContext());

    public static ChatCompletionResponse Reply(ProviderContext context, string text) => new()
    {
        Id = "chatcmpl-test",
        Model = context.Model,
        Choices = [new ChatChoice { Index = 0, Message = new ChatResponseMessage { Content = text }, FinishReason = "stop" }],
        Usage = new ChatUsage { PromptTokens = 1, CompletionTokens = 1, TotalTokens = 2 },
    };
}

/// <summary>A provider whose answer is a function of the call number (from 1); counts its calls.</summary>
internal sealed class ScriptedAdapter(Func<int, ProviderContext, CancellationToken, Task<ChatCompletionResponse>> answer) : IProviderAdapter
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken) =>
        answer(Interlocked.Increment(ref _calls), context, cancellationToken);

    public IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken) =>
        throw new NotSupportedException();
}

/// <summary>A provider that holds every call until <see cref="Open"/> (or the call is cancelled), then answers "gate-open".</summary>
internal sealed class GateAdapter : IProviderAdapter
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _started;

    public int Started => Volatile.Read(ref _started);

    public void Open() => _gate.TrySetResult();

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _started);
        await _gate.Task.WaitAsync(cancellationToken);
        return AsyncTestKit.Reply(context, "gate-open");
    }

    public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask;
        yield break;
    }
}

/// <summary>Authenticates a request as the user named in <c>X-Test-User</c> (claim <c>sub</c>); no header, no user.</summary>
internal sealed class TestUserAuthHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "TestUser";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var user = Request.Headers["X-Test-User"].ToString();
        if (string.IsNullOrEmpty(user))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var identity = new ClaimsIdentity([new Claim("sub", user)], SchemeName);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }
}
