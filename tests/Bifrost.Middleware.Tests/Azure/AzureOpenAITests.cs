using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Azure;
using Bifrost.Middleware.Providers.OpenAI;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Bifrost.Middleware.Tests.Azure;

/// <summary>Type <c>azure</c> through the gateway and the adapter, against the fake Azure OpenAI resource.</summary>
public sealed class AzureOpenAITests : IAsyncLifetime
{
    private FakeAzureOpenAIUpstream _upstream = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _upstream = await FakeAzureOpenAIUpstream.StartAsync();

    public async ValueTask DisposeAsync() => await _upstream.DisposeAsync();

    [Fact]
    public async Task V1_api_posts_to_openai_v1_with_the_api_key_header_and_the_mapped_deployment_as_model()
    {
        await using var host = await StartAsync(p => p.Deployments["gpt-4o"] = "prod-gpt4o");

        var json = await ChatAsync(host, "azure/gpt-4o");

        var sent = _upstream.Requests.Single();
        Assert.Equal("POST", sent.Method);
        Assert.Equal("/openai/v1/chat/completions", sent.Path);
        Assert.Null(sent.ApiVersion);
        Assert.Equal(FakeAzureOpenAIUpstream.ApiKey, sent.ApiKeyHeader);
        Assert.Null(sent.Authorization);
        Assert.Equal("prod-gpt4o", sent.Body!["model"]!.GetValue<string>());
        Assert.Equal("hi", sent.Body["messages"]![0]!["content"]!.GetValue<string>());
        Assert.Equal("Hello from Azure.", json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("prod-gpt4o", json.GetProperty("x_deployment").GetString());
    }

    [Fact]
    public async Task V1_api_sends_an_unmapped_model_as_its_own_deployment_and_accepts_a_base_url_ending_in_openai_v1()
    {
        await using var host = await StartAsync(p => p.BaseUrl = _upstream.Endpoint + "/openai/v1/");

        await ChatAsync(host, "azure/gpt-4o-mini");

        var sent = _upstream.Requests.Single();
        Assert.Equal("/openai/v1/chat/completions", sent.Path);
        Assert.Equal("gpt-4o-mini", sent.Body!["model"]!.GetValue<string>());
    }

    [Fact]
    public async Task Dated_api_version_posts_to_the_deployment_url_with_api_version()
    {
        await using var host = await StartAsync(p =>
        {
            p.ApiVersion = "2024-10-21";
            p.Deployments["gpt-4o"] = "prod gpt4o";
            p.Deployments["text-embedding-3-small"] = "emb";
        });

        await ChatAsync(host, "azure/gpt-4o");
        using var embeddings = await host.PostJsonAsync("/openai/v1/embeddings", """{"model":"azure/text-embedding-3-small","input":"x"}""", Ct);
        Assert.Equal(HttpStatusCode.OK, embeddings.StatusCode);

        var sent = _upstream.Requests.ToList();
        Assert.Equal("/openai/deployments/prod gpt4o/chat/completions", sent[0].Path);
        Assert.Equal("2024-10-21", sent[0].ApiVersion);
        Assert.Equal("gpt-4o", sent[0].Body!["model"]!.GetValue<string>()); // the deployment URL names the deployment; the body is the request as is
        Assert.Equal("/openai/deployments/emb/embeddings", sent[1].Path);
        Assert.Equal("2024-10-21", sent[1].ApiVersion);
        Assert.Equal(FakeAzureOpenAIUpstream.ApiKey, sent[1].ApiKeyHeader);
    }

    [Fact]
    public void Urls_of_both_api_styles_for_every_operation()
    {
        static string Url(string? version, string path) =>
            AzureOpenAI.For(new ProviderContext("azure", new ProviderOptions { Type = "azure", BaseUrl = "https://res.openai.azure.com/", ApiVersion = version, Deployments = { ["m"] = "dep" } }, "m", null), path).ToString();

        Assert.Equal("https://res.openai.azure.com/openai/v1/chat/completions", Url(null, "chat/completions"));
        Assert.Equal("https://res.openai.azure.com/openai/v1/files/file-1/content", Url("v1", "files/file-1/content"));
        Assert.Equal("https://res.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2024-10-21", Url("2024-10-21", "chat/completions"));
        Assert.Equal("https://res.openai.azure.com/openai/deployments/dep/completions?api-version=2024-10-21", Url("2024-10-21", "completions"));
        Assert.Equal("https://res.openai.azure.com/openai/models?api-version=2024-10-21", Url("2024-10-21", "models"));
        Assert.Equal("https://res.openai.azure.com/openai/batches/b-1/cancel?api-version=2024-10-21", Url("2024-10-21", "batches/b-1/cancel"));
        Assert.Equal("https://res.openai.azure.com/openai/files?api-version=preview", Url("preview", "files"));
    }

    [Fact]
    public async Task Content_filter_results_and_finish_reason_pass_through_in_the_response()
    {
        _upstream.FilterOutput = true;
        await using var host = await StartAsync();

        var json = await ChatAsync(host, "azure/gpt-4o");

        var choice = json.GetProperty("choices")[0];
        Assert.Equal("content_filter", choice.GetProperty("finish_reason").GetString());
        Assert.True(choice.GetProperty("content_filter_results").GetProperty("violence").GetProperty("filtered").GetBoolean());
        Assert.Equal("high", choice.GetProperty("content_filter_results").GetProperty("violence").GetProperty("severity").GetString());
        Assert.Equal("safe", json.GetProperty("prompt_filter_results")[0].GetProperty("content_filter_results").GetProperty("hate").GetProperty("severity").GetString());
    }

    [Fact]
    public async Task A_filtered_prompt_is_a_400_content_filter_error_with_the_filter_details_and_is_not_retried()
    {
        _upstream.FilterPrompt = true;
        await using var host = await StartAsync(p => p.MaxRetries = 2);

        var json = await ChatAsync(host, "azure/gpt-4o", HttpStatusCode.BadRequest);

        var error = json.GetProperty("error");
        Assert.Equal("content_filter", error.GetProperty("code").GetString());
        Assert.Equal("prompt", error.GetProperty("param").GetString());
        Assert.StartsWith("The response was filtered due to the prompt", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("ResponsibleAIPolicyViolation", error.GetProperty("innererror").GetProperty("code").GetString());
        var jailbreak = error.GetProperty("innererror").GetProperty("content_filter_result").GetProperty("jailbreak");
        Assert.True(jailbreak.GetProperty("filtered").GetBoolean());
        Assert.True(jailbreak.GetProperty("detected").GetBoolean());
        Assert.False(json.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Single(_upstream.Requests);
    }

    [Fact]
    public void Other_errors_keep_no_innererror()
    {
        var ex = AzureOpenAI.ParseError(new Providers.Http.UpstreamError(404, "Not Found", """{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist.","innererror":{"x":1}}}""", null));

        Assert.Equal(404, ex.StatusCode);
        Assert.Equal("DeploymentNotFound", ex.Error.Error.Code);
        Assert.Null(ex.Error.Error.InnerError);
    }

    [Fact]
    public async Task Stream_tolerates_the_prompt_filter_chunk_and_passes_content_filter_results_and_finish_reason()
    {
        _upstream.FilterOutput = true;
        await using var host = await StartAsync(p => p.Deployments["gpt-4o"] = "prod-gpt4o");
        var adapter = host.Services.GetRequiredKeyedService<OpenAICompatibleAdapter>(AzureProviderType.AdapterKey);
        var options = host.Services.GetRequiredService<IOptions<BifrostOptions>>().Value.Providers["azure"];
        var request = new ChatCompletionRequest { Model = "gpt-4o", Messages = [ChatCompletionMessage.FromText("user", "hi")], Stream = true };

        var chunks = new List<ChatCompletionChunk>();
        await foreach (var chunk in adapter.StreamChatCompletionAsync(new ProviderContext("azure", options, "gpt-4o", FakeAzureOpenAIUpstream.ApiKey), request, Ct))
        {
            chunks.Add(chunk);
        }

        var sent = _upstream.Requests.Single();
        Assert.Equal("prod-gpt4o", sent.Body!["model"]!.GetValue<string>());
        Assert.True(sent.Body["stream"]!.GetValue<bool>());
        Assert.Equal("assistant", chunks[0].Choices.Single().Delta.Role); // the prompt's annotation chunk is folded into the first real chunk
        Assert.Equal("safe", chunks[0].AdditionalProperties!["prompt_filter_results"][0].GetProperty("content_filter_results").GetProperty("hate").GetProperty("severity").GetString());
        Assert.All(chunks, c => Assert.Equal("chatcmpl-azure", c.Id));
        Assert.Equal("Partial", string.Concat(chunks.SelectMany(c => c.Choices).Select(c => c.Delta.Content)));
        var last = chunks[^1].Choices.Single();
        Assert.Equal("content_filter", last.FinishReason);
        Assert.True(last.AdditionalProperties!["content_filter_results"].GetProperty("violence").GetProperty("filtered").GetBoolean());

        // and through the gateway, as SSE
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"azure/gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}""", Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"finish_reason\":\"content_filter\"", text, StringComparison.Ordinal);
        Assert.Contains("\"content_filter_results\"", text, StringComparison.Ordinal);
        Assert.Contains("\"content\":\"Partial\"", text, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Native_batches_on_a_dated_version_use_the_resource_files_and_batches_urls_with_api_version()
    {
        await using var host = await StartAsync(p => p.ApiVersion = "2025-03-01-preview");
        var adapter = host.Services.GetRequiredKeyedService<OpenAICompatibleAdapter>(AzureProviderType.AdapterKey);
        var options = host.Services.GetRequiredService<IOptions<BifrostOptions>>().Value.Providers["azure"];
        var context = new ProviderContext("azure", options, string.Empty, FakeAzureOpenAIUpstream.ApiKey);
        using var input = new MemoryStream("""{"custom_id":"a","method":"POST","url":"/chat/completions","body":{"model":"gpt-4o-batch","messages":[]}}"""u8.ToArray());

        var created = await adapter.CreateBatchAsync(context, input, new ProviderBatchRequest { Endpoint = "/chat/completions", CompletionWindow = "24h" }, Ct);
        var cancelled = await adapter.CancelBatchAsync(context, created.Id, Ct);

        Assert.Equal("batch_azure_1", created.Id);
        Assert.Equal("cancelling", cancelled.Status);
        var sent = _upstream.Requests.ToList();
        Assert.Equal(["/openai/files", "/openai/batches", "/openai/batches/batch_azure_1/cancel"], sent.Select(r => r.Path));
        Assert.All(sent, r => Assert.Equal("2025-03-01-preview", r.ApiVersion));
        Assert.All(sent, r => Assert.Equal(FakeAzureOpenAIUpstream.ApiKey, r.ApiKeyHeader));
        Assert.Equal("file-azure-1", sent[1].Body!["input_file_id"]!.GetValue<string>());
        var upload = Assert.Single(_upstream.Uploads);
        Assert.Equal("batch", upload.Purpose);
        Assert.Contains("gpt-4o-batch", upload.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_wrong_key_is_a_401_whose_answer_never_contains_a_key()
    {
        await using var host = await StartAsync(p => p.Keys = [new ProviderKeyOptions { Value = "wrong-secret-key-42" }]);

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"azure/gpt-4o","messages":[{"role":"user","content":"hi"}]}""", Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("Access denied", text, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-secret-key-42", text, StringComparison.Ordinal);
        Assert.Equal("wrong-secret-key-42", _upstream.Requests.Single().ApiKeyHeader);
    }

    [Fact]
    public async Task An_authenticator_replaces_the_key_is_called_per_request_and_once_more_after_a_401()
    {
        var authenticator = new CountingAuthenticator(_upstream);
        await using var host = await StartAsync(p => p.Keys = [], b => b.AddUpstreamAuthenticator("azure", _ => authenticator));

        await ChatAsync(host, "azure/gpt-4o");
        await ChatAsync(host, "azure/gpt-4o");

        var sent = _upstream.Requests.ToList();
        Assert.Equal(3, sent.Count); // the first token is refused once, then a fresh one is used
        Assert.Equal("Bearer token-1", sent[0].Authorization);
        Assert.Equal("Bearer token-2", sent[1].Authorization);
        Assert.Equal("Bearer token-2", sent[2].Authorization);
        Assert.All(sent, r => Assert.Null(r.ApiKeyHeader));
        Assert.Equal("hi", sent[1].Body!["messages"]![0]!["content"]!.GetValue<string>()); // the body is sent again
        Assert.Equal([false, true, false], authenticator.Calls);
        Assert.All(authenticator.Providers, p => Assert.Equal("azure", p));
    }

    [Fact]
    public async Task An_authenticator_failure_is_a_502_upstream_auth_failed_not_a_500_and_the_provider_name_ignores_case()
    {
        await using var host = await StartAsync(p => p.Keys = [], b => b.AddUpstreamAuthenticator("AZURE", _ => new FailingAuthenticator()));

        var json = await ChatAsync(host, "azure/gpt-4o", HttpStatusCode.BadGateway);

        Assert.Equal("upstream_auth_failed", json.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("no credential here", json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(_upstream.Requests);
    }

    [Fact]
    public async Task An_azure_provider_needs_a_base_url_a_plain_api_version_and_named_deployments()
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayHost.StartAsync(o =>
        {
            o.Providers["azure"] = new ProviderOptions { Type = "azure" };
            o.Providers["az2"] = new ProviderOptions { Type = "azure", BaseUrl = "https://x.openai.azure.com", ApiVersion = "2024-10-21&x=1", Deployments = { ["m"] = " " } };
        }));

        Assert.Contains("Bifrost:Providers:azure:BaseUrl is required for an Azure OpenAI provider", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Bifrost:Providers:az2:ApiVersion '2024-10-21&x=1'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Bifrost:Providers:az2:Deployments:m needs a deployment name", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ApiVersion_and_Deployments_bind_from_configuration()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bifrost:Providers:azure:Type"] = "azure",
            ["Bifrost:Providers:azure:BaseUrl"] = "https://res.openai.azure.com",
            ["Bifrost:Providers:azure:ApiVersion"] = "2024-10-21",
            ["Bifrost:Providers:azure:Deployments:gpt-4.1"] = "prod-41",
        }).Build();
        using var services = new ServiceCollection().AddLogging().AddBifrost(configuration.GetSection("Bifrost")).Services.BuildServiceProvider();

        var azure = services.GetRequiredService<IOptions<BifrostOptions>>().Value.Providers["azure"];

        Assert.Equal("2024-10-21", azure.ApiVersion);
        Assert.Equal("prod-41", azure.Deployments["gpt-4.1"]);
        Assert.Equal(
            "https://res.openai.azure.com/openai/deployments/prod-41/chat/completions?api-version=2024-10-21",
            AzureOpenAI.For(new ProviderContext("azure", azure, "gpt-4.1", null), "chat/completions").ToString());
    }

    private Task<GatewayHost> StartAsync(Action<ProviderOptions>? configure = null, Action<IBifrostBuilder>? bifrost = null) => GatewayHost.StartAsync(
        o =>
        {
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
        },
        bifrost);

    private static async Task<JsonElement> ChatAsync(GatewayHost host, string model, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var body = new JsonObject { ["model"] = model, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) };
        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", body.ToJsonString(), Ct);
        var json = await GatewayHost.ReadJsonAsync(response);
        Assert.True(expected == response.StatusCode, $"Expected {expected}, got {response.StatusCode}: {json}");
        return json;
    }

    /// <summary>Hands out token-1, token-2, ... (a new one only when told the last was refused); the fake accepts only token-2.</summary>
    private sealed class CountingAuthenticator : IUpstreamAuthenticator
    {
        private int _issued;

        public CountingAuthenticator(FakeAzureOpenAIUpstream upstream) => upstream.Tokens["token-2"] = true;

        public List<bool> Calls { get; } = [];

        public List<string> Providers { get; } = [];

        public ValueTask AuthenticateAsync(HttpRequestMessage request, UpstreamAuthContext context, CancellationToken cancellationToken)
        {
            lock (Calls)
            {
                Calls.Add(context.Unauthorized);
                Providers.Add(context.ProviderName);
                if (_issued == 0 || context.Unauthorized)
                {
                    _issued++;
                }

                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "token-" + _issued);
            }

            return ValueTask.CompletedTask;
        }
    }

    private sealed class FailingAuthenticator : IUpstreamAuthenticator
    {
        public ValueTask AuthenticateAsync(HttpRequestMessage request, UpstreamAuthContext context, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("no credential here");
    }
}
