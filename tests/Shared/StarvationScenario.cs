using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.TestHost;

namespace Bifrost.Middleware.Tests.Shared;

/// <summary>
/// Finding "one caller can starve the others", end to end, against any job store (this file is compiled into the
/// in-memory, SQLite and PostgreSQL test projects). Owner A submits more slow async jobs than there are workers (a gated
/// provider holds them until the test opens the gate); owner B's trivial job must complete while A's jobs are still held,
/// and A never runs more jobs at once than the per-owner cap (counted across every instance sharing the store).
/// </summary>
internal static class StarvationScenario
{
    private const string ChatPath = "/openai/v1/chat/completions";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <param name="useStore">Selects the store (the same store for every instance).</param>
    /// <param name="instances">Hosts sharing the store (more than one only for a shared store).</param>
    /// <param name="configure">Further options for every host.</param>
    public static async Task RunAsync(Action<IBifrostBuilder> useStore, int instances = 1, Action<BifrostOptions>? configure = null)
    {
        const int Workers = 4;
        var held = new HeldProvider();
        var hosts = new List<WebApplication>();
        try
        {
            for (var i = 0; i < instances; i++)
            {
                hosts.Add(await StartAsync(held, useStore, o =>
                {
                    o.Jobs.Workers = Workers;
                    configure?.Invoke(o);
                }));
            }

            var cap = hosts[0].Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<BifrostOptions>>().Value.Jobs.MaxRunningPerOwner ?? Math.Max(1, Workers / 2);
            var clients = hosts.Select(h => h.GetTestServer().CreateClient()).ToList();
            var store = hosts[0].Services.GetRequiredService<IJobStore>();

            // Owner A: more slow jobs than all the workers of every instance together.
            var slow = new List<string>();
            for (var i = 0; i < (Workers * instances) + 2; i++)
            {
                slow.Add(await SubmitAsync(clients[i % clients.Count], "owner-a", "held/slow", $"slow {i}"));
            }

            await EventuallyAsync("owner A's jobs to take the workers they may have", () => Task.FromResult(held.Started >= cap));

            // Owner B: a trivial job, answered while A's jobs are all still held by the gate.
            var quick = await SubmitAsync(clients[^1], "owner-b", "local/echo", "quick");
            var answer = await EventuallyAsync<JsonElement?>("owner B's job to complete", async () =>
            {
                using var response = await SendAsync(clients[0], "owner-b", "{}", ("x-bf-async-id", quick));
                var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.Clone();
                return response.StatusCode == HttpStatusCode.OK && json.GetProperty("choices").GetArrayLength() > 0 ? json : (JsonElement?)null;
            });
            Assert.Contains("quick", answer!.Value.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), StringComparison.Ordinal);

            // A's jobs: none finished (the gate is closed), and never more running than the cap, on every instance together.
            Assert.Equal(cap, held.Started);
            var states = new List<JobStatus>();
            foreach (var id in slow)
            {
                states.Add((await store.GetAsync(id, Ct))!.Status);
            }

            Assert.Equal(cap, states.Count(s => s == JobStatus.Processing));
            Assert.Equal(slow.Count - cap, states.Count(s => s == JobStatus.Pending));
            Assert.Equal(cap, (await store.GetOwnerUsageAsync(OwnerOf(hosts[0], "owner-a"), Ct)).RunningJobs);

            // Once the upstream answers, A's jobs all complete, still never more than the cap at once.
            held.Open();
            foreach (var id in slow)
            {
                await EventuallyAsync($"owner A's job {id} to complete", async () => await store.GetAsync(id, Ct) is { Status: JobStatus.Completed } ? (object?)true : null);
            }

            Assert.True(held.MostAtOnce <= cap, $"owner A ran {held.MostAtOnce} jobs at once; the cap is {cap}");
        }
        finally
        {
            held.Open();
            foreach (var host in hosts)
            {
                await host.StopAsync(CancellationToken.None);
                await host.DisposeAsync();
            }
        }
    }

    private static async Task<WebApplication> StartAsync(HeldProvider held, Action<IBifrostBuilder> useStore, Action<BifrostOptions> configure)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        var gateway = builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
            options.Jobs.PollInterval = TimeSpan.FromMilliseconds(50);
            configure(options);
        });
        gateway.AddProvider("held", _ => held);
        useStore(gateway);
        var app = builder.Build();
        app.MapBifrost("/openai");
        await app.StartAsync(Ct);
        return app;
    }

    private static string OwnerOf(WebApplication host, string credential)
    {
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Request.Headers.Authorization = "Bearer " + credential;
        return host.Services.GetRequiredService<IJobOwnerResolver>().ResolveOwner(context);
    }

    private static async Task<string> SubmitAsync(HttpClient client, string owner, string model, string text)
    {
        var body = $$"""{"model":"{{model}}","messages":[{"role":"user","content":"{{text}}"}]}""";
        using var response = await SendAsync(client, owner, body, ("x-bf-async", "true"));
        var json = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"submit answered {(int)response.StatusCode}: {json}");
        return JsonDocument.Parse(json).RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, string owner, string body, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, ChatPath) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", owner);
        foreach (var (name, value) in headers)
        {
            request.Headers.Add(name, value);
        }

        return await client.SendAsync(request, Ct);
    }

    private static async Task<T> EventuallyAsync<T>(string what, Func<Task<T?>> probe)
    {
        var until = DateTime.UtcNow + Deadline;
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < until, $"Timed out waiting for {what}.");
            await Task.Delay(20, Ct);
        }
    }

    private static Task<object> EventuallyAsync(string what, Func<Task<bool>> probe) =>
        EventuallyAsync<object>(what, async () => await probe() ? true : null);

    /// <summary>Holds every call until <see cref="Open"/>; counts the calls started and the most held at once.</summary>
    private sealed class HeldProvider : IProviderAdapter
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _started;
        private int _holding;
        private int _mostAtOnce;

        public int Started => Volatile.Read(ref _started);

        public int MostAtOnce => Volatile.Read(ref _mostAtOnce);

        public void Open() => _gate.TrySetResult();

        public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _started);
            var now = Interlocked.Increment(ref _holding);
            int most;
            while (now > (most = Volatile.Read(ref _mostAtOnce)) && Interlocked.CompareExchange(ref _mostAtOnce, now, most) != most)
            {
            }

            try
            {
                await _gate.Task.WaitAsync(cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref _holding);
            }

            return new ChatCompletionResponse
            {
                Id = "chatcmpl-held",
                Model = context.Model,
                Choices = [new ChatChoice { Index = 0, Message = new ChatResponseMessage { Content = "released" }, FinishReason = "stop" }],
                Usage = new ChatUsage { PromptTokens = 1, CompletionTokens = 1, TotalTokens = 2 },
            };
        }

        public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.CompletedTask;
            yield break;
        }
    }
}
