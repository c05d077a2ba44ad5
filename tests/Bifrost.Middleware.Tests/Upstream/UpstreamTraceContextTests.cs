using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;
using OpenTelemetry;
using OpenTelemetry.Trace;
using static Bifrost.Middleware.Tests.Upstream.UpstreamGateway;

namespace Bifrost.Middleware.Tests.Upstream;

/// <summary>Activity listeners are process-wide: these tests run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(UpstreamTraceContextRunsAlone), DisableParallelization = true)]
public sealed class UpstreamTraceContextRunsAlone;

/// <summary>
/// Issue 18: <see cref="TelemetryOptions.UpstreamTraceContext"/>. A host with logging on gets an ASP.NET Core <c>Activity</c> per
/// request; by default (<see cref="UpstreamTraceContext.Auto"/>) the call to the provider carries <c>traceparent</c> (and gets
/// HttpClient's child activity) only when that trace is recorded, came from the client, or HttpClient's instrumentation
/// listens. The fake upstream speaks OpenAI's chat completions API (https://platform.openai.com/docs/api-reference/chat/create);
/// the header is W3C Trace Context's (https://www.w3.org/TR/trace-context/#traceparent-header).
/// </summary>
[Collection(nameof(UpstreamTraceContextRunsAlone))]
public sealed class UpstreamTraceContextTests
{
    private const string ClientTraceId = "0af7651916cd43dd8448eb211c80319c";

    [Fact]
    public async Task By_default_an_unrecorded_host_activity_sends_no_traceparent()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartLoggingHostAsync(upstream);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var request = Assert.Single(upstream.Requests);
        Assert.Null(request.Header("traceparent"));
        Assert.Null(request.Header("tracestate"));
    }

    [Fact]
    public async Task Always_sends_the_host_activitys_trace_as_dotnet_does()
    {
        var hostTraces = new ConcurrentQueue<string>();
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartLoggingHostAsync(upstream, UpstreamTraceContext.Always, hostTraces);

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var traceparent = Assert.Single(upstream.Requests).Header("traceparent");
        Assert.NotNull(traceparent);
        Assert.Equal(Assert.Single(hostTraces), traceparent.Split('-')[1]);
    }

    [Fact]
    public async Task By_default_a_client_trace_context_is_propagated()
    {
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartLoggingHostAsync(upstream);

        using var request = new HttpRequestMessage(HttpMethod.Post, ChatPath) { Content = new StringContent(Chat(), System.Text.Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("traceparent", $"00-{ClientTraceId}-b7ad6b7169203331-00");
        using var response = await host.Client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var traceparent = Assert.Single(upstream.Requests).Header("traceparent");
        Assert.NotNull(traceparent);
        var parts = traceparent.Split('-');
        Assert.Equal(ClientTraceId, parts[1]);
        Assert.NotEqual("b7ad6b7169203331", parts[2]); // HttpClient's child activity, not the client's span
    }

    [Fact]
    public async Task By_default_a_recorded_trace_is_propagated()
    {
        var recorded = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = static source => source.Name == "Microsoft.AspNetCore",
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = recorded.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        await using var upstream = await FakeOpenAIUpstream.StartAsync();

        await using (var host = await StartLoggingHostAsync(upstream))
        {
            using var response = await host.PostChatAsync(Chat());
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var traceparent = Assert.Single(upstream.Requests).Header("traceparent");
        Assert.NotNull(traceparent);
        var first = recorded.First(a => a.Recorded);
        Assert.Equal(first.TraceId.ToHexString(), traceparent.Split('-')[1]);
    }

    [Fact]
    public async Task OpenTelemetry_HttpClient_instrumentation_gets_its_spans_and_the_upstream_its_traceparent()
    {
        var spans = new ConcurrentQueue<Activity>();
        await using var upstream = await FakeOpenAIUpstream.StartAsync();
        await using var host = await StartLoggingHostAsync(upstream, services: services => services.AddOpenTelemetry()
            .WithTracing(tracing => tracing.SetSampler(new AlwaysOnSampler()).AddHttpClientInstrumentation().AddProcessor(new Collect(spans))));

        using var response = await host.PostChatAsync(Chat());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var traceparent = Assert.Single(upstream.Requests).Header("traceparent");
        Assert.NotNull(traceparent);
        var span = Assert.Single(spans, s => s.Kind == ActivityKind.Client);
        Assert.StartsWith($"00-{span.TraceId.ToHexString()}-{span.SpanId.ToHexString()}-", traceparent, StringComparison.Ordinal);
    }

    [Fact]
    public void The_option_binds_from_configuration()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Telemetry:UpstreamTraceContext"] = "always" }).Build();
        var options = new BifrostOptions();
        configuration.Bind(options);

        Assert.Equal(UpstreamTraceContext.Always, options.Telemetry.UpstreamTraceContext);
        Assert.Equal(UpstreamTraceContext.Auto, new BifrostOptions().Telemetry.UpstreamTraceContext);
    }

    /// <summary>A gateway host with logging on (so ASP.NET Core starts an <c>Activity</c> per request, unrecorded), as the sample has.</summary>
    private static Task<GatewayHost> StartLoggingHostAsync(
        FakeOpenAIUpstream upstream,
        UpstreamTraceContext? mode = null,
        ConcurrentQueue<string>? hostTraces = null,
        Action<IServiceCollection>? services = null) =>
        GatewayHost.StartAsync(
            options =>
            {
                options.Providers["openai"] = Provider(upstream);
                if (mode is { } m)
                {
                    options.Telemetry.UpstreamTraceContext = m;
                }
            },
            services: s =>
            {
                s.AddSingleton<ILoggerProvider>(new LogSink());
                if (hostTraces is not null)
                {
                    s.AddSingleton<IStartupFilter>(new RecordHostTrace(hostTraces));
                }

                services?.Invoke(s);
            });

    private sealed class RecordHostTrace(ConcurrentQueue<string> traces) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, following) =>
            {
                if (Activity.Current is { } current)
                {
                    traces.Enqueue(current.TraceId.ToHexString());
                }

                return following(context);
            });
            next(app);
        };
    }

    private sealed class Collect(ConcurrentQueue<Activity> spans) : BaseProcessor<Activity>
    {
        public override void OnEnd(Activity data) => spans.Enqueue(data);
    }
}
