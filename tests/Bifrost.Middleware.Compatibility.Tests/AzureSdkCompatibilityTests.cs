using System.ClientModel;
using System.ClientModel.Primitives;
using Azure.AI.OpenAI;
using Microsoft.AspNetCore.TestHost;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Images;

namespace Bifrost.Middleware.Compatibility.Tests;

/// <summary>
/// The Azure OpenAI SDK (<see cref="AzureOpenAIClient"/>, endpoint = the host's <c>/openai</c>, an API key) against
/// <c>MapBifrostAzure</c>: chat, streaming, embeddings, image edits and variations on deployments mapped to the local provider.
/// </summary>
public sealed class AzureSdkCompatibilityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<(WebApplication App, AzureOpenAIClient Client, HttpClient Http)> StartAsync(string apiKey = "azure-key", Action<BifrostOptions>? configure = null, List<HttpRequestMessage>? sent = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", MaxRetries = 0 };
            options.AzureInbound.Deployments["chat-deployment"] = "local/echo";
            options.AzureInbound.Deployments["embedding-deployment"] = "local/echo";
            options.AzureInbound.Deployments["image-deployment"] = "local/gpt-image-1";
            options.AzureInbound.RequireApiVersion = true; // the SDK always sends it
            configure?.Invoke(options);
        });
        var app = builder.Build();
        app.MapBifrost("/openai");
        app.MapBifrostAzure("/openai");
        await app.StartAsync(Ct);
        var server = app.GetTestServer();
        var http = sent is null ? server.CreateClient() : new HttpClient(new RecordingHandler(server.CreateHandler(), sent)) { BaseAddress = server.BaseAddress };
        var client = new AzureOpenAIClient(
            new Uri(server.BaseAddress, "/openai"),
            new ApiKeyCredential(apiKey),
            new AzureOpenAIClientOptions { Transport = new HttpClientPipelineTransport(http), RetryPolicy = new ClientRetryPolicy(0) });
        return (app, client, http);
    }

    [Fact]
    public async Task Chat_through_the_Azure_SDK_is_answered_by_the_mapped_deployment()
    {
        var (app, client, http) = await StartAsync();
        await using var _ = app;
        using var __ = http;

        ChatCompletion completion = await client.GetChatClient("chat-deployment").CompleteChatAsync([new UserChatMessage("Hello from Azure")], cancellationToken: Ct);

        Assert.Equal("Hello from Azure", Assert.Single(completion.Content).Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("echo", completion.Model);
        Assert.StartsWith("chatcmpl-", completion.Id, StringComparison.Ordinal);
        Assert.True(completion.Usage.OutputTokenCount > 0);
    }

    [Fact]
    public async Task Chat_streaming_through_the_Azure_SDK_assembles_the_text()
    {
        var (app, client, http) = await StartAsync();
        await using var _ = app;
        using var __ = http;

        var text = new System.Text.StringBuilder();
        var updates = 0;
        ChatFinishReason? finish = null;
        await foreach (var update in client.GetChatClient("chat-deployment").CompleteChatStreamingAsync([new UserChatMessage("stream through azure")], cancellationToken: Ct))
        {
            updates++;
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            finish ??= update.FinishReason;
        }

        Assert.Equal("stream through azure", text.ToString());
        Assert.True(updates >= 2, $"{updates} updates");
        Assert.Equal(ChatFinishReason.Stop, finish);
    }

    [Fact]
    public async Task Embeddings_through_the_Azure_SDK_are_the_same_as_through_the_OpenAI_route()
    {
        var (app, client, http) = await StartAsync();
        await using var _ = app;
        using var __ = http;

        OpenAIEmbeddingCollection embeddings = await client.GetEmbeddingClient("embedding-deployment").GenerateEmbeddingsAsync(["first", "second text"], cancellationToken: Ct);

        Assert.Equal(2, embeddings.Count);
        Assert.Equal(256, embeddings[0].ToFloats().Length);
        Assert.Equal(1.0, Math.Sqrt(embeddings[1].ToFloats().ToArray().Sum(v => (double)v * v)), 4);
        Assert.Equal("echo", embeddings.Model);

        // The same vector as the OpenAI-shaped route gives for the same model and text.
        var openai = new global::OpenAI.OpenAIClient(
            new ApiKeyCredential("sk-test"),
            new global::OpenAI.OpenAIClientOptions { Endpoint = new Uri(app.GetTestServer().BaseAddress, "/openai/v1"), Transport = new HttpClientPipelineTransport(http) });
        OpenAIEmbedding direct = await openai.GetEmbeddingClient("local/echo").GenerateEmbeddingAsync("second text", cancellationToken: Ct);
        Assert.Equal(direct.ToFloats().ToArray(), embeddings[1].ToFloats().ToArray());
    }

    [Fact]
    public async Task A_gateway_error_reaches_the_Azure_SDK_as_a_ClientResultException_with_its_status_and_message()
    {
        var (app, client, http) = await StartAsync();
        await using var _ = app;
        using var __ = http;

        // A temperature out of range is refused by the gateway's validation with 400 (OpenAI's error envelope, which is Azure's).
        var ex = await Assert.ThrowsAsync<ClientResultException>(() => client.GetChatClient("chat-deployment").CompleteChatAsync(
            [new UserChatMessage("too hot")], new ChatCompletionOptions { Temperature = 5 }, Ct));
        Assert.Equal(400, ex.Status);
        Assert.Contains("temperature", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_SDKs_api_key_is_the_virtual_key_when_governance_requires_one()
    {
        const string secret = "sk-bf-azure-sdk-0001";
        void Governance(BifrostOptions options)
        {
            options.Governance.Mode = GovernanceMode.Required;
            options.Governance.VirtualKeys.Add(new VirtualKeyOptions { Id = "azure-sdk", Name = "azure sdk", Value = secret });
        }

        var (app, client, http) = await StartAsync(secret, Governance);
        await using (app)
        using (http)
        {
            ChatCompletion completion = await client.GetChatClient("chat-deployment").CompleteChatAsync([new UserChatMessage("governed")], cancellationToken: Ct);
            Assert.Equal("governed", completion.Content[0].Text);
        }

        var (app2, wrong, http2) = await StartAsync("not-a-virtual-key", Governance);
        await using (app2)
        using (http2)
        {
            var ex = await Assert.ThrowsAsync<ClientResultException>(() => wrong.GetChatClient("chat-deployment").CompleteChatAsync([new UserChatMessage("refused")], cancellationToken: Ct));
            Assert.Equal(401, ex.Status);
        }
    }

    /// <summary>A PNG-looking upload of every byte value: the gateway must hash exactly these bytes.</summary>
    private static readonly byte[] ImageBytes = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, .. Enumerable.Range(0, 256).Select(static i => (byte)i)];

    [Fact]
    public async Task Image_edits_and_variations_through_the_Azure_SDK_reach_the_deployment_routes_with_api_version_and_api_key()
    {
        var sent = new List<HttpRequestMessage>();
        var (app, client, http) = await StartAsync(sent: sent);
        await using var _ = app;
        using var __ = http;

        GeneratedImage edited;
        using (var image = new MemoryStream(ImageBytes))
        {
            edited = await client.GetImageClient("image-deployment").GenerateImageEditAsync(image, "otter.png", "an azure hat", new ImageEditOptions { ResponseFormat = GeneratedImageFormat.Bytes }, Ct);
        }

        GeneratedImageCollection variations;
        using (var image = new MemoryStream(ImageBytes))
        {
            variations = await client.GetImageClient("image-deployment").GenerateImageVariationsAsync(image, "otter.png", 2, new ImageVariationOptions { ResponseFormat = GeneratedImageFormat.Bytes }, Ct);
        }

        // The Azure SDK called the deployment routes, with its api-version and its api-key header.
        Assert.Equal(2, sent.Count);
        Assert.Equal(["/openai/openai/deployments/image-deployment/images/edits", "/openai/openai/deployments/image-deployment/images/variations"], sent.Select(r => r.RequestUri!.AbsolutePath));
        Assert.All(sent, r => Assert.Matches(@"(^|[?&])api-version=\d{4}-\d{2}-\d{2}", r.RequestUri!.Query));
        Assert.All(sent, r => Assert.Equal("azure-key", r.Headers.GetValues("api-key").Single()));

        // The same PNGs the OpenAI-shaped route answers for the mapped model and the same upload.
        var openai = new global::OpenAI.OpenAIClient(
            new ApiKeyCredential("sk-test"),
            new global::OpenAI.OpenAIClientOptions { Endpoint = new Uri(app.GetTestServer().BaseAddress, "/openai/v1"), Transport = new HttpClientPipelineTransport(app.GetTestServer().CreateClient()) });
        using (var image = new MemoryStream(ImageBytes))
        {
            GeneratedImage direct = await openai.GetImageClient("local/gpt-image-1").GenerateImageEditAsync(image, "otter.png", "an azure hat", new ImageEditOptions { ResponseFormat = GeneratedImageFormat.Bytes }, Ct);
            Assert.Equal(direct.ImageBytes.ToArray(), edited.ImageBytes.ToArray());
        }

        using (var image = new MemoryStream(ImageBytes))
        {
            GeneratedImageCollection direct = await openai.GetImageClient("local/gpt-image-1").GenerateImageVariationsAsync(image, "otter.png", 2, new ImageVariationOptions { ResponseFormat = GeneratedImageFormat.Bytes }, Ct);
            Assert.Equal(2, variations.Count);
            Assert.Equal(direct[1].ImageBytes.ToArray(), variations[1].ImageBytes.ToArray());
            Assert.NotEqual(variations[0].ImageBytes.ToArray(), variations[1].ImageBytes.ToArray());
        }

        Assert.Equal("an azure hat", edited.RevisedPrompt);
    }

    [Fact]
    public async Task A_raw_image_edit_on_the_deployment_route_without_api_version_is_a_400_when_it_is_required()
    {
        var (app, _, http) = await StartAsync();
        await using var __ = app;
        using var ___ = http;

        using var form = new MultipartFormDataContent { { new ByteArrayContent(ImageBytes), "image", "otter.png" }, { new StringContent("raw"), "prompt" } };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/openai/deployments/image-deployment/images/edits") { Content = form };
        request.Headers.Add("api-key", "azure-key");
        using var response = await http.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("missing_api_version", body, StringComparison.Ordinal);
    }

    /// <summary>Records each request the SDK sends (path, query, headers) before passing it on.</summary>
    private sealed class RecordingHandler(HttpMessageHandler inner, List<HttpRequestMessage> sent) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (sent)
            {
                sent.Add(request);
            }

            return base.SendAsync(request, cancellationToken);
        }
    }
}
