using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Operations;

/// <summary>
/// The telemetry layer records every operation the same way: whole answers and streams of every kind, failures before
/// the first chunk, and token usage (Responses included).
/// </summary>
public sealed class TelemetryLayerTests : IDisposable
{
    private readonly ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)> _measurements = new();
    private readonly MeterListener _listener = new();
    private readonly string _model = "echo-" + Guid.NewGuid().ToString("N")[..8]; // tells this test's measurements from other tests'

    public TelemetryLayerTests()
    {
        _listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Bifrost.Middleware")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>((i, v, t, _) => Add(i.Name, v, t));
        _listener.SetMeasurementEventCallback<long>((i, v, t, _) => Add(i.Name, v, t));
        _listener.Start();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _listener.Dispose();

    private void Add(string instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var map = new Dictionary<string, object?>();
        foreach (var tag in tags)
        {
            map[tag.Key] = tag.Value;
        }

        if (Equals(map.GetValueOrDefault("gen_ai.request.model"), _model))
        {
            _measurements.Enqueue((instrument, value, map));
        }
    }

    private (double Value, Dictionary<string, object?> Tags)[] Durations(string operation) =>
        [.. _measurements.Where(m => m.Instrument == "gen_ai.client.operation.duration" && Equals(m.Tags["gen_ai.operation.name"], operation)).Select(m => (m.Value, m.Tags))];

    private double[] Tokens(string operation, string type) =>
        [.. _measurements.Where(m => m.Instrument == "gen_ai.client.token.usage" && Equals(m.Tags["gen_ai.operation.name"], operation) && Equals(m.Tags["gen_ai.token.type"], type)).Select(m => m.Value)];

    [Theory]
    [InlineData("chat/completions", "chat", """{"model":"local/MODEL","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three"}]}""")]
    [InlineData("completions", "text_completion", """{"model":"local/MODEL","stream":true,"stream_options":{"include_usage":true},"prompt":"one two three"}""")]
    [InlineData("responses", "responses", """{"model":"local/MODEL","stream":true,"input":"one two three"}""")]
    public async Task Every_stream_records_its_duration_and_usage(string path, string operation, string body)
    {
        await using var host = await GatewayHost.StartAsync(configure: o => o.Providers["local"].Models.Clear());

        using var response = await host.PostJsonAsync("/openai/v1/" + path, body.Replace("MODEL", _model, StringComparison.Ordinal), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var duration = Assert.Single(Durations(operation));
        Assert.Equal("local", duration.Tags["gen_ai.provider.name"]);
        Assert.False(duration.Tags.ContainsKey("error.type"), text);
        Assert.True(Assert.Single(Tokens(operation, "input")) > 0);
        Assert.True(Assert.Single(Tokens(operation, "output")) > 0);
    }

    [Theory]
    [InlineData("chat/completions", "chat", """{"model":"local/MODEL","stream":true,"metadata":{"local_status":"400"},"messages":[{"role":"user","content":"x"}]}""")]
    [InlineData("completions", "text_completion", """{"model":"local/MODEL","stream":true,"metadata":{"local_status":"400"},"prompt":"x"}""")]
    [InlineData("responses", "responses", """{"model":"local/MODEL","stream":true,"metadata":{"local_status":"400"},"input":"x"}""")]
    [InlineData("chat/completions", "chat", """{"model":"local/MODEL","metadata":{"local_status":"400"},"messages":[{"role":"user","content":"x"}]}""")]
    [InlineData("responses", "responses", """{"model":"local/MODEL","metadata":{"local_status":"400"},"input":"x"}""")]
    public async Task A_call_failing_before_its_first_chunk_records_its_error(string path, string operation, string body)
    {
        await using var host = await GatewayHost.StartAsync(configure: o => o.Providers["local"].Models.Clear());

        using var response = await host.PostJsonAsync("/openai/v1/" + path, body.Replace("MODEL", _model, StringComparison.Ordinal), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);

        var duration = Assert.Single(Durations(operation));
        Assert.Equal("local", duration.Tags["gen_ai.provider.name"]);
        Assert.True(duration.Tags.TryGetValue("error.type", out var errorType) && errorType is string { Length: > 0 }, text);
    }

    [Fact]
    public async Task A_whole_responses_answer_records_its_usage()
    {
        await using var host = await GatewayHost.StartAsync(configure: o => o.Providers["local"].Models.Clear());

        using var response = await host.PostJsonAsync("/openai/v1/responses", $$"""{"model":"local/{{_model}}","input":"one two three"}""", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        Assert.Single(Durations("responses"));
        Assert.True(Assert.Single(Tokens("responses", "input")) > 0);
        Assert.True(Assert.Single(Tokens("responses", "output")) > 0);
    }
}
