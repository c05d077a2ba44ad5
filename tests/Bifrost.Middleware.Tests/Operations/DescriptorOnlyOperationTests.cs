using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Bifrost.Middleware.Operations;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Operations;

/// <summary>
/// An operation the library does not know — "text reversal" — registered only as a descriptor (one
/// <see cref="BifrostOperation"/> singleton) plus its adapter method: it gets its routes (with and without <c>/v1</c>),
/// the 405 answer, async jobs (<c>x-bf-async</c> and the envelope), batch lines (validated uploads and runs) and
/// metrics, without any other edit.
/// </summary>
public sealed class DescriptorOnlyOperationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public sealed class ReverseRequest
    {
        [JsonPropertyName("model")]
        public string? Model { get; set; }

        [JsonPropertyName("input")]
        public string? Input { get; set; }

        [JsonPropertyName("fallbacks")]
        public List<string>? Fallbacks { get; set; }
    }

    public sealed class ReverseResponse
    {
        [JsonPropertyName("id")]
        public string? Id { get; set; }

        [JsonPropertyName("object")]
        public string Object { get; set; } = "text.reversal";

        [JsonPropertyName("output")]
        public string? Output { get; set; }

        [JsonPropertyName("extra_fields")]
        public BifrostExtraFields? ExtraFields { get; set; }
    }

    /// <summary>The adapter method of the new operation.</summary>
    public interface IReverseAdapter
    {
        Task<ReverseResponse> ReverseAsync(ProviderContext context, ReverseRequest request, CancellationToken cancellationToken);
    }

    private sealed class ReverseAdapter : IProviderAdapter, IReverseAdapter
    {
        public int Calls;

        public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken) => throw ProviderErrors.Unsupported(context, "chat");

        public IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken) => throw ProviderErrors.Unsupported(context, "chat");

        public Task<ReverseResponse> ReverseAsync(ProviderContext context, ReverseRequest request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Calls);
            var chars = request.Input!.ToCharArray();
            Array.Reverse(chars);
            return Task.FromResult(new ReverseResponse { Id = "rev-" + Guid.NewGuid().ToString("N")[..8], Output = new string(chars) + "@" + context.Model });
        }
    }

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, TypeInfoResolver = new DefaultJsonTypeInfoResolver() };

    /// <summary>The whole description of the new operation.</summary>
    internal static readonly InferenceOperation<ReverseRequest, ReverseResponse, ReverseResponse> Reverse = new()
    {
        Name = "text_reversal",
        MetricName = "reverse",
        Summary = "text reversal",
        Paths = ["text/reverse"],
        BatchLineUrl = "/v1/text/reverse",
        RequestInfo = (JsonTypeInfo<ReverseRequest>)Json.GetTypeInfo(typeof(ReverseRequest)),
        ResponseInfo = (JsonTypeInfo<ReverseResponse>)Json.GetTypeInfo(typeof(ReverseResponse)),
        Model = static r => r.Model,
        SetModel = static (r, model) => r.Model = model,
        Fallbacks = static r => r.Fallbacks,
        Validate = static r =>
        {
            if (string.IsNullOrEmpty(r.Input))
            {
                throw BifrostException.Gateway(400, "invalid_request_error", "missing_required_parameter", "'input' is required.", "input");
            }
        },
        Call = static (call, r, ct) => call.Adapter is IReverseAdapter reverse
            ? reverse.ReverseAsync(call.Context, new ReverseRequest { Model = call.Target.Model, Input = r.Input }, ct)
            : throw ProviderErrors.Unsupported(call.Context, "text reversal"),
        ExtraFieldsOf = static r => r.ExtraFields,
        SetExtraFields = static (r, extra) => r.ExtraFields = extra,
        ResponseIdOf = static r => r.Id,
        Pending = static (job, _, model) => new ReverseResponse { Id = job.Id, ExtraFields = new BifrostExtraFields { RequestType = "text_reversal", ModelRequested = model } },
    };

    private static Task<FileBatchHost> StartAsync(ReverseAdapter adapter) => FileBatchHost.StartAsync(
        o => o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20),
        bifrost: b => b.AddProvider("rev", _ => adapter),
        services: s => s.AddSingleton<BifrostOperation>(Reverse));

    [Theory]
    [InlineData("/openai/v1/text/reverse")]
    [InlineData("/openai/text/reverse")]
    public async Task It_gets_its_synchronous_route_with_extra_fields_and_validation(string path)
    {
        var adapter = new ReverseAdapter();
        await using var host = await StartAsync(adapter);

        using var ok = await host.PostJsonAsync(path, """{"model":"rev/m1","input":"abc"}""");
        var json = await FileBatchHost.ExpectAsync(ok, HttpStatusCode.OK);
        Assert.Equal("cba@m1", json.GetProperty("output").GetString());
        Assert.True(json.TryGetProperty("extra_fields", out var extra), json.ToString());
        Assert.Equal("text_reversal", extra.GetProperty("request_type").GetString());
        Assert.Equal("rev", extra.GetProperty("provider").GetString());

        using var bad = await host.PostJsonAsync(path, """{"model":"rev/m1"}""");
        var error = await FileBatchHost.ExpectAsync(bad, HttpStatusCode.BadRequest);
        Assert.Equal("input", error.GetProperty("error").GetProperty("param").GetString());
        Assert.Equal("text_reversal", error.GetProperty("extra_fields").GetProperty("request_type").GetString());

        using var unknownProvider = await host.PostJsonAsync(path, """{"model":"nope/m1","input":"abc"}""");
        await FileBatchHost.ExpectErrorAsync(unknownProvider, HttpStatusCode.BadRequest);
        Assert.Equal(1, adapter.Calls);
    }

    [Theory]
    [InlineData("GET", "/openai/v1/text/reverse")]
    [InlineData("PUT", "/openai/v1/text/reverse")]
    [InlineData("DELETE", "/openai/text/reverse")]
    [InlineData("GET", "/openai/v1/async/text/reverse")]
    public async Task Other_methods_get_405_with_its_allow_header_and_request_type(string method, string path)
    {
        await using var host = await StartAsync(new ReverseAdapter());

        using var response = await host.SendAsync(new HttpMethod(method), path);
        var error = await FileBatchHost.ExpectAsync(response, HttpStatusCode.MethodNotAllowed);

        Assert.Equal("POST", string.Join(", ", response.Content.Headers.Allow));
        Assert.Equal("method_not_allowed", error.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("text_reversal", error.GetProperty("extra_fields").GetProperty("request_type").GetString());
    }

    [Fact]
    public async Task It_runs_as_an_async_job_through_the_header_and_the_envelope()
    {
        await using var host = await StartAsync(new ReverseAdapter());

        using var submit = new HttpRequestMessage(HttpMethod.Post, "/openai/v1/text/reverse") { Content = new StringContent("""{"model":"rev/m2","input":"hello"}""", Encoding.UTF8, "application/json") };
        submit.Headers.Add("x-bf-async", "true");
        using var accepted = await host.Client.SendAsync(submit, Ct);
        var pending = await FileBatchHost.ExpectAsync(accepted, HttpStatusCode.OK);
        var jobId = pending.GetProperty("id").GetString()!;
        Assert.False(pending.TryGetProperty("output", out var output) && output.ValueKind == JsonValueKind.String);

        var polled = await PollAsync(host, () =>
        {
            var poll = new HttpRequestMessage(HttpMethod.Get, "/openai/v1/text/reverse");
            poll.Headers.Add("x-bf-async-id", jobId);
            return poll;
        }, json => json.TryGetProperty("output", out var o) && o.ValueKind == JsonValueKind.String);
        Assert.Equal("olleh@m2", polled.GetProperty("output").GetString());

        using var envelopeSubmit = await host.PostJsonAsync("/openai/v1/async/text/reverse", """{"model":"rev/m3","input":"xy"}""");
        var envelope = await FileBatchHost.ExpectAsync(envelopeSubmit, HttpStatusCode.Accepted);
        var envelopeId = envelope.GetProperty("id").GetString()!;
        var done = await PollAsync(host, () => new HttpRequestMessage(HttpMethod.Get, $"/openai/v1/async/text/reverse/{envelopeId}"), json => json.GetProperty("status").GetString() == "completed");
        Assert.Equal("yx@m3", done.GetProperty("result").GetProperty("output").GetString());
        Assert.Equal(200, done.GetProperty("status_code").GetInt32());

        // The job belongs to this operation: another operation's routes do not serve it.
        using var other = await host.GetAsync($"/openai/v1/async/chat/completions/{envelopeId}");
        await FileBatchHost.ExpectErrorAsync(other, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task It_serves_batch_lines_from_a_validated_upload()
    {
        await using var host = await StartAsync(new ReverseAdapter());
        var lines = new[] { "ab", "abc", "abcd" }.Select((text, i) => new JsonObject
        {
            ["custom_id"] = $"r-{i}",
            ["method"] = "POST",
            ["url"] = "/v1/text/reverse",
            ["body"] = new JsonObject { ["model"] = "rev/m4", ["input"] = text },
        }.ToJsonString());
        var file = await host.UploadOkAsync(Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n"));

        using var create = await host.CreateBatchRawAsync(new JsonObject { ["input_file_id"] = file.GetProperty("id").GetString(), ["endpoint"] = "/v1/text/reverse", ["completion_window"] = "24h" }.ToJsonString());
        var batch = await FileBatchHost.ExpectAsync(create, HttpStatusCode.OK);
        var done = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        var (output, errors) = await host.ResultsAsync(done);

        Assert.Empty(errors);
        var answers = output.ToDictionary(l => l.GetProperty("custom_id").GetString()!, l => l.GetProperty("response").GetProperty("body").GetProperty("output").GetString());
        Assert.Equal("ba@m4", answers["r-0"]);
        Assert.Equal("cba@m4", answers["r-1"]);
        Assert.Equal("dcba@m4", answers["r-2"]);
        Assert.All(output, l => Assert.StartsWith("rev-", l.GetProperty("response").GetProperty("request_id").GetString(), StringComparison.Ordinal));

        // The new url is accepted by upload validation; an unknown one is still refused, naming the new url among the supported.
        var refused = await host.UploadAsync(Encoding.UTF8.GetBytes("""{"custom_id":"x","method":"POST","url":"/v1/text/other","body":{"model":"rev/m","input":"a"}}""" + "\n"));
        var error = await FileBatchHost.ExpectErrorAsync(refused, HttpStatusCode.BadRequest);
        Assert.Contains("/v1/text/reverse", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task It_records_duration_metrics_under_its_own_operation_name_for_success_and_failure()
    {
        var measurements = new ConcurrentQueue<(double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Bifrost.Middleware" && instrument.Name == "gen_ai.client.operation.duration")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, value, tags, _) =>
        {
            var map = new Dictionary<string, object?>();
            foreach (var tag in tags)
            {
                map[tag.Key] = tag.Value;
            }

            if (Equals(map.GetValueOrDefault("gen_ai.operation.name"), "reverse"))
            {
                measurements.Enqueue((value, map));
            }
        });
        listener.Start();
        await using var host = await StartAsync(new ReverseAdapter());

        using var ok = await host.PostJsonAsync("/openai/v1/text/reverse", """{"model":"rev/m5","input":"abc"}""");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        using var failed = await host.PostJsonAsync("/openai/v1/text/reverse", """{"model":"local/echo","input":"abc"}""");
        Assert.Equal(HttpStatusCode.BadRequest, failed.StatusCode); // the local provider has no text reversal

        var recorded = measurements.ToArray();
        Assert.Equal(2, recorded.Length);
        Assert.Contains(recorded, m => Equals(m.Tags["gen_ai.provider.name"], "rev") && Equals(m.Tags["gen_ai.request.model"], "m5") && !m.Tags.ContainsKey("error.type"));
        Assert.Contains(recorded, m => Equals(m.Tags["gen_ai.provider.name"], "local") && Equals(m.Tags["error.type"], "unsupported_operation"));
        Assert.All(recorded, m => Assert.True(m.Value >= 0));
    }

    private static async Task<JsonElement> PollAsync(FileBatchHost host, Func<HttpRequestMessage> request, Func<JsonElement, bool> until)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            using var message = request();
            using var response = await host.Client.SendAsync(message, Ct);
            var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.Clone();
            if (until(json))
            {
                return json;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the job did not finish: {json}");
            await Task.Delay(25, Ct);
        }
    }
}
