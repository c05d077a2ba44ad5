using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Azure;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Infrastructure.NativeBatchSteps;

namespace Bifrost.Middleware.Tests.Azure;

/// <summary>
/// Type <c>azure</c> through the gateway against the fake Azure resource: native batches (<c>/v1/batches</c> with
/// NativeBatches, on the v1 API and a dated version), the Responses API on both API styles, and the 429 message hint.
/// </summary>
public sealed class AzureBatchAndResponsesTests : IAsyncLifetime
{
    private readonly string _files = Path.Combine(Path.GetTempPath(), "bifrost-azure-batch-" + Guid.NewGuid().ToString("N"));
    private FakeAzureOpenAIUpstream _upstream = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _upstream = await FakeAzureOpenAIUpstream.StartAsync();

    public async ValueTask DisposeAsync()
    {
        await _upstream.DisposeAsync();
        if (Directory.Exists(_files))
        {
            Directory.Delete(_files, recursive: true);
        }
    }

    [Fact]
    public async Task Native_batch_on_the_v1_api_uploads_deployment_names_and_copies_the_output_back_priced()
    {
        await using var host = await StartAsync(p =>
        {
            p.Deployments["gpt-4o"] = "gpt-4o-global-batch";
            p.NativeBatches = true;
        });
        var fileId = await UploadAsync(host, Lines("azure/gpt-4o", "azure/gpt-4o"));
        var batch = await CreateBatchAsync(host, fileId);
        var done = await WaitForStatusAsync(host, batch, "completed");

        // Azure got the batch on its v1 routes: the upload (purpose batch) carries the deployment, not the model.
        var paths = _upstream.Requests.Select(r => r.Path).ToList();
        Assert.Equal("/openai/v1/files", paths[0]);
        Assert.Equal("/openai/v1/batches", paths[1]);
        Assert.All(_upstream.Requests, r => Assert.Null(r.ApiVersion));
        Assert.All(_upstream.Requests, r => Assert.Equal(FakeAzureOpenAIUpstream.ApiKey, r.ApiKeyHeader));
        Assert.DoesNotContain(_upstream.Requests, r => r.Path.EndsWith("/chat/completions", StringComparison.Ordinal));
        var upload = Assert.Single(_upstream.Uploads);
        Assert.Equal("batch", upload.Purpose);
        var uploaded = upload.Content.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(2, uploaded.Count);
        Assert.All(uploaded, l => Assert.Equal("gpt-4o-global-batch", l["body"]!["model"]!.GetValue<string>()));
        Assert.All(uploaded, l => Assert.Equal("/v1/chat/completions", l["url"]!.GetValue<string>())); // the v1 API's spelling
        var upstreamBatch = Assert.Single(_upstream.Batches.Values);
        Assert.Equal("/v1/chat/completions", upstreamBatch.Endpoint);
        Assert.Equal("file-azure-1", upstreamBatch.InputFileId);

        // Our batch completed with Azure's counts, and its output is in our file store.
        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("total").GetInt32());
        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        var output = await host.Client.GetStringAsync($"/openai/v1/files/{done.GetProperty("output_file_id").GetString()}/content", Ct);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["c0", "c1"], lines.Select(l => l.GetProperty("custom_id").GetString()).Order());
        var body = lines[0].GetProperty("response").GetProperty("body");
        Assert.Equal("batched by gpt-4o-global-batch", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        // Priced at the batch price from the catalog: Azure's gpt-4o-2024-08-06 at OpenAI's gpt-4o prices (2.50 + 10.00 per 1M), 50% off.
        Assert.Equal(6.25, body.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 9);
    }

    [Fact]
    public async Task Native_batch_on_a_dated_version_uses_api_version_urls_without_v1_and_reads_azure_iso_times()
    {
        _upstream.IsoBatchTimes = true;
        _upstream.CompleteAfterPolls = 2;
        await using var host = await StartAsync(p =>
        {
            p.ApiVersion = "2024-10-21";
            p.Deployments["gpt-4o-mini"] = "mini-batch";
            p.NativeBatches = true;
        });
        var fileId = await UploadAsync(host, Lines("azure/gpt-4o-mini", "azure/gpt-4o-mini", "azure/gpt-4o-mini"));
        var batch = await CreateBatchAsync(host, fileId);
        var done = await WaitForStatusAsync(host, batch, "completed");

        var sent = _upstream.Requests.ToList();
        Assert.Equal("/openai/files", sent[0].Path);
        Assert.Equal("/openai/batches", sent[1].Path);
        Assert.Equal("/openai/batches/batch_azure_1", sent[2].Path);
        Assert.Contains(sent, r => r.Path == "/openai/files/file-azure-out-batch_azure_1/content");
        Assert.All(sent, r => Assert.Equal("2024-10-21", r.ApiVersion));
        var uploaded = Assert.Single(_upstream.Uploads).Content.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.All(uploaded, l => Assert.Equal("mini-batch", l["body"]!["model"]!.GetValue<string>()));
        Assert.All(uploaded, l => Assert.Equal("/chat/completions", l["url"]!.GetValue<string>())); // the how-to's spelling
        Assert.Equal("/chat/completions", Assert.Single(_upstream.Batches.Values).Endpoint);

        Assert.Equal(3, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        Assert.NotEqual(JsonValueKind.Null, done.GetProperty("output_file_id").ValueKind);
    }

    [Fact]
    public async Task Cancel_of_a_native_azure_batch_is_forwarded_and_ends_cancelled()
    {
        _upstream.CompleteAfterPolls = int.MaxValue;
        await using var host = await StartAsync(p => p.NativeBatches = true);
        var fileId = await UploadAsync(host, Lines("azure/gpt-4o"));
        var batch = await CreateBatchAsync(host, fileId);
        await WaitForStatusAsync(host, batch, "in_progress", until: () => !_upstream.Batches.IsEmpty);

        using var cancel = await host.Client.PostAsync($"/openai/v1/batches/{batch}/cancel", null, Ct);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var cancelled = await WaitForStatusAsync(host, batch, "cancelled");

        Assert.True(Assert.Single(_upstream.Batches.Values).CancelRequested);
        Assert.Contains(_upstream.Requests, r => r.Path == "/openai/v1/batches/batch_azure_1/cancel" && r.Method == "POST");
        Assert.NotEqual(JsonValueKind.Null, cancelled.GetProperty("cancelled_at").ValueKind);
    }

    [Fact]
    public void Azure_batch_objects_read_as_openai_ones()
    {
        var batch = AzureBatches.Read(JsonNode.Parse("""
            {"id":"batch_1","object":"batch","endpoint":"/chat/completions","input_file_id":"file-1","completion_window":"24h","status":"Validating",
             "created_at":"2024-07-19T17:13:57.2491382+00:00","expires_at":"2024-07-20T17:13:57.1918498+00:00","completed_at":null,
             "request_counts":{"total":null,"completed":null,"failed":null},"errors":null,"metadata":null}
            """));

        Assert.Equal("validating", batch.Status);
        Assert.Equal(new DateTimeOffset(2024, 7, 19, 17, 13, 57, TimeSpan.Zero).ToUnixTimeSeconds(), batch.CreatedAt);
        Assert.Equal(new DateTimeOffset(2024, 7, 20, 17, 13, 57, TimeSpan.Zero).ToUnixTimeSeconds(), batch.ExpiresAt);
        Assert.Null(batch.CompletedAt);
        Assert.Equal(0, batch.RequestCounts.Total);
        Assert.Equal("/v1/chat/completions", AzureBatches.Endpoint(new ProviderOptions { ApiVersion = "v1" }, "/v1/chat/completions"));
        Assert.Equal("/chat/completions", AzureBatches.Endpoint(new ProviderOptions { ApiVersion = "2024-10-21" }, "/v1/chat/completions"));
        Assert.Equal("/chat/completions", AzureBatches.Endpoint(new ProviderOptions { ApiVersion = "2024-10-21" }, "/chat/completions"));
    }

    [Theory]
    [InlineData(null, "/openai/v1/responses", null)]
    [InlineData("2025-03-01-preview", "/openai/responses", "2025-03-01-preview")]
    public async Task Native_responses_post_to_azure_with_the_deployment_as_model_on_both_api_styles(string? version, string path, string? apiVersion)
    {
        await using var host = await StartAsync(p =>
        {
            p.ApiVersion = version;
            p.NativeResponses = true;
            p.Deployments["gpt-4.1"] = "prod-41";
        });

        using var response = await host.PostJsonAsync("/openai/v1/responses", """{"model":"azure/gpt-4.1","input":"hi"}""", Ct);
        var json = await GatewayHost.ReadJsonAsync(response);

        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal(path, sent.Path);
        Assert.Equal(apiVersion, sent.ApiVersion);
        Assert.Equal("prod-41", sent.Body!["model"]!.GetValue<string>());
        Assert.Equal("hi", sent.Body["input"]!.GetValue<string>());
        Assert.Equal(FakeAzureOpenAIUpstream.ApiKey, sent.ApiKeyHeader);
        Assert.Equal("resp_azure", json.GetProperty("id").GetString());
        Assert.Equal("Hello from Azure Responses.", json.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(5, json.GetProperty("usage").GetProperty("input_tokens").GetInt32());
    }

    [Fact]
    public async Task Input_tokens_are_counted_by_the_gateway_even_with_native_responses()
    {
        await using var host = await StartAsync(p => p.NativeResponses = true);

        using var response = await host.PostJsonAsync("/openai/v1/responses/input_tokens", """{"model":"azure/gpt-4o","input":"hello there"}""", Ct);
        var json = await GatewayHost.ReadJsonAsync(response);

        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        Assert.True(json.GetProperty("input_tokens").GetInt32() > 0);
        Assert.Empty(_upstream.Requests); // Azure documents no responses/input_tokens route
    }

    [Fact]
    public async Task Native_responses_stream_from_a_dated_version()
    {
        await using var host = await StartAsync(p =>
        {
            p.ApiVersion = "2025-03-01-preview";
            p.NativeResponses = true;
        });

        using var response = await host.PostJsonAsync("/openai/v1/responses", """{"model":"azure/gpt-4o","input":"hi","stream":true}""", Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/openai/responses", sent.Path);
        Assert.True(sent.Body!["stream"]!.GetValue<bool>());
        Assert.Equal("gpt-4o", sent.Body["model"]!.GetValue<string>()); // unmapped: the model is its own deployment
        Assert.Contains("event: response.output_text.delta", text, StringComparison.Ordinal);
        Assert.Contains("\"delta\":\"Hello from Azure Responses.\"", text, StringComparison.Ordinal);
        Assert.Contains("event: response.completed", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chat_on_a_dated_version_still_posts_the_request_model_to_the_deployment_url()
    {
        await using var host = await StartAsync(p =>
        {
            p.ApiVersion = "2024-10-21";
            p.Deployments["gpt-4o"] = "prod";
        });

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"azure/gpt-4o","messages":[{"role":"user","content":"hi"}]}""", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sent = Assert.Single(_upstream.Requests);
        Assert.Equal("/openai/deployments/prod/chat/completions", sent.Path);
        Assert.Equal("gpt-4o", sent.Body!["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_429_without_retry_headers_takes_the_wait_from_azures_message_and_is_retried_after_it()
    {
        _upstream.ThrottleWithMessageOnly = 7;
        await using var host = await StartAsync(p => p.MaxRetries = 0);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"azure/gpt-4o","messages":[{"role":"user","content":"hi"}]}""", Ct);
        var json = await GatewayHost.ReadJsonAsync(response);

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);
        Assert.Contains("Please retry after 7 seconds.", json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("429", json.GetProperty("error").GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("Requests to the ChatCompletions_Create Operation ... Please retry after 37 seconds. Please go here", 37)]
    [InlineData("Rate limit is exceeded. Try again in 5 seconds.", 5)]
    [InlineData("Rate limit is exceeded. Try again in 1 second.", 1)]
    [InlineData("Rate limit is exceeded.", null)]
    [InlineData("Please retry after 99999 seconds.", null)]
    public void The_429_hint_is_read_from_the_message(string message, int? seconds)
    {
        var error = AzureOpenAI.ParseError(new Providers.Http.UpstreamError(429, "Too Many Requests", new JsonObject { ["error"] = new JsonObject { ["code"] = "429", ["message"] = message } }.ToJsonString(), null));

        Assert.Equal(429, error.StatusCode);
        Assert.Equal(seconds is { } s ? TimeSpan.FromSeconds(s) : null, error.RetryAfter);
    }

    [Fact]
    public void A_retry_header_wins_over_the_message_and_other_statuses_take_no_hint()
    {
        var text = """{"error":{"code":"429","message":"Please retry after 37 seconds."}}""";

        Assert.Equal(TimeSpan.FromSeconds(2), AzureOpenAI.ParseError(new Providers.Http.UpstreamError(429, null, text, TimeSpan.FromSeconds(2))).RetryAfter);
        Assert.Null(AzureOpenAI.ParseError(new Providers.Http.UpstreamError(503, null, text, null)).RetryAfter);
    }

    [Fact]
    public async Task An_azure_answer_is_priced_at_openais_price_of_the_model_unless_azure_has_its_own()
    {
        await using var host = await StartAsync(p => p.Deployments["gpt-4o-mini"] = "prod-mini");

        using var mini = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"azure/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}""", Ct);
        using var unknown = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"azure/my-own-finetune","messages":[{"role":"user","content":"hi"}]}""", Ct);
        var priced = await GatewayHost.ReadJsonAsync(mini);
        var unpriced = await GatewayHost.ReadJsonAsync(unknown);

        // the fake's usage: 10 prompt + 3 completion tokens; openai/gpt-4o-mini is 0.15 / 0.60 per 1M
        Assert.Equal((10 * 0.15 / 1e6) + (3 * 0.60 / 1e6), priced.GetProperty("extra_fields").GetProperty("cost").GetDouble(), 12);
        Assert.False(unpriced.GetProperty("extra_fields").TryGetProperty("cost", out _));

        var catalog = new Bifrost.Middleware.Governance.Pricing.PricingCatalog(new BifrostOptions
        {
            Providers = { ["work-azure"] = new ProviderOptions { Type = "azure" }, ["azure"] = new ProviderOptions { Type = "azure" } },
            Pricing = { ["azure/gpt-4o"] = new ModelPriceOptions { InputPerMillion = 2.75, OutputPerMillion = 11 } },
        });
        Assert.Equal(2.75, catalog.Find("azure", "gpt-4o")!.InputPerMillion); // Azure's own entry wins
        Assert.Equal(0.15, catalog.Find("work-azure", "gpt-4o-mini-2024-07-18")!.InputPerMillion); // by type, then OpenAI's
        Assert.Null(catalog.Find("openai-compatible-thing", "gpt-4o-mini"));
    }

    private Task<GatewayHost> StartAsync(Action<ProviderOptions>? configure = null) => GatewayHost.StartAsync(o =>
    {
        o.Files.Directory = _files;
        o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
        o.Batches.NativePollInterval = TimeSpan.FromMilliseconds(30);
        o.Batches.ProgressInterval = TimeSpan.FromMilliseconds(20);
        var azure = new ProviderOptions
        {
            Type = "azure",
            BaseUrl = _upstream.Endpoint,
            Keys = [new ProviderKeyOptions { Value = FakeAzureOpenAIUpstream.ApiKey }],
            MaxRetries = 0,
            RetryBaseDelay = TimeSpan.Zero,
        };
        configure?.Invoke(azure);
        o.Providers["azure"] = azure;
    });

    private static string Lines(params string[] models) => string.Join('\n', models.Select((model, i) => new JsonObject
    {
        ["custom_id"] = $"c{i}",
        ["method"] = "POST",
        ["url"] = "/v1/chat/completions",
        ["body"] = new JsonObject { ["model"] = model, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = $"line {i}" }) },
    }.ToJsonString())) + "\n";
}
