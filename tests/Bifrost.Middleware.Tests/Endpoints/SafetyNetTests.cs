using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Inference;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Endpoints;

/// <summary>
/// The one safety net of every Bifrost route: an unexpected exception — from the gateway client, the job store, the owner
/// resolver — is a 500 <c>internal_error</c> in the Bifrost shape with the request id (body and <c>x-request-id</c>),
/// logged once with its stack; after a stream started, the stream ends with an error event.
/// </summary>
public sealed class SafetyNetTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string ChatBody = """{"model":"local/echo","messages":[{"role":"user","content":"hi"}]}""";
    private const string ResponsesBody = """{"model":"local/echo","input":"hi"}""";

    /// <summary>Route kind, method, path, body, extra header, the request type the error must carry.</summary>
    public static TheoryData<string, string, string, string?, string?, string> Routes() => new()
    {
        { "client", "POST", "/openai/v1/chat/completions", ChatBody, null, "chat_completion" },
        { "client", "POST", "/openai/v1/chat/completions", ChatBody[..^1] + ""","stream":true}""", null, "chat_completion" },
        { "client", "POST", "/openai/v1/completions", """{"model":"local/echo","prompt":"hi"}""", null, "text_completion" },
        { "client", "POST", "/openai/v1/completions", """{"model":"local/echo","prompt":"hi","stream":true}""", null, "text_completion" },
        { "client", "POST", "/openai/v1/embeddings", """{"model":"local/echo","input":"hi"}""", null, "embedding" },
        { "client", "POST", "/openai/v1/responses", ResponsesBody, null, "responses" },
        { "client", "POST", "/openai/v1/responses", """{"model":"local/echo","input":"hi","stream":true}""", null, "responses" },
        { "client", "POST", "/openai/v1/responses/input_tokens", ResponsesBody, null, "count_tokens" },
        { "client", "GET", "/openai/v1/models", null, null, "list_models" },
        { "plugin", "POST", "/openai/v1/chat/completions", ChatBody, null, "chat_completion" },
        { "plugin", "POST", "/openai/v1/chat/completions", ChatBody[..^1] + ""","stream":true}""", null, "chat_completion" },
        { "plugin", "POST", "/openai/v1/responses", ResponsesBody, null, "responses" },
        { "store", "POST", "/openai/v1/chat/completions", ChatBody, "x-bf-async", "chat_completion" },
        { "store", "POST", "/openai/v1/embeddings", """{"model":"local/echo","input":"hi"}""", "x-bf-async", "embedding" },
        { "store", "POST", "/openai/v1/async/responses", ResponsesBody, null, "responses" },
        { "store", "GET", "/openai/v1/async/chat/completions/job-1", null, null, "chat_completion" },
        { "store", "POST", "/openai/v1/completions", "{}", "x-bf-async-id", "text_completion" },
        { "store", "POST", "/openai/v1/batches/batch-1/cancel", null, null, "batch_cancel" },
        { "owner", "POST", "/openai/v1/batches", """{"input_file_id":"file-x","endpoint":"/v1/chat/completions","completion_window":"24h"}""", null, "batch_create" },
        { "store", "GET", "/openai/v1/batches", null, null, "batch_list" },
        { "store", "GET", "/openai/v1/batches/batch-1", null, null, "batch_retrieve" },
        { "owner", "GET", "/openai/v1/files", null, null, "file_list" },
        { "owner", "GET", "/openai/v1/files/file-1/content", null, null, "file_content" },
        { "owner", "POST", "/openai/v1/files", "multipart", null, "file_upload" },
    };

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task An_unexpected_exception_is_a_logged_500_in_the_bifrost_shape(string thrower, string method, string path, string? body, string? header, string requestType)
    {
        var logs = new LogSink();
        await using var host = await StartAsync(thrower, logs);
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body == "multipart")
        {
            request.Content = FileBatchHost.Multipart(Encoding.UTF8.GetBytes("x"), "user_data");
        }
        else if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        if (header is not null)
        {
            request.Headers.Add(header, header == "x-bf-async" ? "true" : "job-1");
        }

        using var response = await host.Client.SendAsync(request, Ct);
        var json = await InferenceKit.ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.InternalServerError, $"{(int)response.StatusCode}: {json}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        InferenceKit.AssertError(json, 500, "internal_error");
        Assert.Equal("api_error", json.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(requestType, json.GetProperty("extra_fields").GetProperty("request_type").GetString());
        var requestId = Assert.Single(response.Headers.GetValues("x-request-id"));
        Assert.False(string.IsNullOrEmpty(requestId));
        Assert.Equal(requestId, json.GetProperty("event_id").GetString());
        Assert.Contains(requestId, json.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("boom-secret", json.ToString(), StringComparison.Ordinal);

        var logged = Assert.Single(logs.Entries, e => e.EventId == 9);
        Assert.IsType<InvalidOperationException>(logged.Exception);
        Assert.Contains(requestId, logged.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Entries, e => e.EventId == 10);
    }

    [Theory]
    [InlineData("/openai/v1/chat/completions", """{"model":"local/echo","stream":true,"messages":[{"role":"user","content":"after"}]}""")]
    [InlineData("/openai/v1/completions", """{"model":"local/echo","stream":true,"prompt":"after"}""")]
    [InlineData("/openai/v1/responses", """{"model":"local/echo","stream":true,"input":"after"}""")]
    public async Task After_the_first_chunk_the_stream_ends_with_an_internal_error_event(string path, string body)
    {
        var logs = new LogSink();
        await using var host = await StartAsync("client", logs);
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var requestId = Assert.Single(response.Headers.GetValues("x-request-id"));
        var events = InferenceKit.ParseSse(text);
        Assert.Equal(2, events.Count);
        Assert.Equal("first", JsonDocument.Parse(events[0].Data).RootElement.GetProperty("marker").GetString());
        var error = JsonDocument.Parse(events[1].Data).RootElement;
        var code = error.TryGetProperty("error", out var detail) ? detail.GetProperty("code").GetString() : error.GetProperty("code").GetString();
        Assert.Equal("internal_error", code);
        Assert.Contains(requestId, events[1].Data, StringComparison.Ordinal);
        Assert.Single(logs.Entries, e => e.EventId == 10);
        Assert.DoesNotContain(logs.Entries, e => e.EventId == 9);
    }

    [Theory]
    [InlineData("GET", "/openai/v1/no/such/route", 404, "unknown_url", null)]
    [InlineData("GET", "/openai/v1/chat/completions", 405, "method_not_allowed", "chat_completion")]
    [InlineData("DELETE", "/openai/v1/models", 405, "method_not_allowed", "list_models")]
    [InlineData("PUT", "/openai/batches", 405, "method_not_allowed", "batch_create")]
    [InlineData("GET", "/openai/v1/async/embeddings", 405, "method_not_allowed", "embedding")]
    public async Task Not_found_and_method_not_allowed_carry_extra_fields(string method, string path, int status, string code, string? requestType)
    {
        await using var host = await GatewayHost.StartAsync();
        using var response = await host.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path), Ct);
        var json = await InferenceKit.ReadAsync(response);
        Assert.Equal(status, (int)response.StatusCode);
        InferenceKit.AssertError(json, status, code);
        var extra = json.GetProperty("extra_fields");
        Assert.Equal(JsonValueKind.Object, extra.ValueKind);
        if (requestType is not null)
        {
            Assert.Equal(requestType, extra.GetProperty("request_type").GetString());
        }

        Assert.Single(response.Headers.GetValues("x-request-id"));
    }

    private static Task<GatewayHost> StartAsync(string thrower, LogSink logs) => GatewayHost.StartAsync(
        options => options.Jobs.PollInterval = TimeSpan.FromMilliseconds(20),
        bifrost: builder =>
        {
            if (thrower == "plugin")
            {
                builder.AddPlugin(new ThrowingPlugin());
            }
        },
        services: services =>
        {
            services.AddSingleton<ILoggerProvider>(logs);
            switch (thrower)
            {
                case "client":
                    services.AddSingleton<IBifrostClient, ThrowingClient>();
                    break;
                case "store":
                    services.AddSingleton<IJobStore>(sp => new ThrowingStore(new InMemoryJobStore(TimeProvider.System)));
                    break;
                case "owner":
                    services.AddSingleton<IJobOwnerResolver, ThrowingOwnerResolver>();
                    break;
            }
        });

    private static InvalidOperationException Boom() => new("boom-secret: an unexpected bug");

    /// <summary>Throws from every call; a stream whose request text is "after" sends one item first.</summary>
    private sealed class ThrowingClient : IBifrostClient
    {
        public Task<ChatCompletionResponse> ChatCompletionAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public IAsyncEnumerable<ChatCompletionChunk> ChatCompletionStreamAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default) =>
            Items(request.Messages?[0].Content?.Text == "after", () => new ChatCompletionChunk { Id = "c", Model = "m", Choices = [], AdditionalProperties = Marker() }, cancellationToken);

        public Task<EmbeddingResponse> EmbeddingsAsync(EmbeddingRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public Task<TextCompletionResponse> TextCompletionAsync(TextCompletionRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public IAsyncEnumerable<TextCompletionResponse> TextCompletionStreamAsync(TextCompletionRequest request, CancellationToken cancellationToken = default) =>
            Items(request.Prompt?.Texts?[0] == "after", () => new TextCompletionResponse { Id = "t", Model = "m", AdditionalProperties = Marker() }, cancellationToken);

        public Task<ResponsesResponse> ResponsesAsync(ResponsesRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public IAsyncEnumerable<ResponsesStreamEvent> ResponsesStreamAsync(ResponsesRequest request, CancellationToken cancellationToken = default) =>
            Items(request.Input?.Text == "after", () => new ResponsesStreamEvent("response.created", JsonDocument.Parse("""{"type":"response.created","marker":"first"}""").RootElement.Clone()), cancellationToken);

        public Task<InputTokensResponse> CountInputTokensAsync(ResponsesRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public Task<ModelList> ListModelsAsync(CancellationToken cancellationToken = default) => throw Boom();

        public Task<ModerationResponse> ModerationAsync(ModerationRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public Task<ImageResponse> ImageGenerationAsync(ImageRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public IAsyncEnumerable<ImageStreamEvent> ImageGenerationStreamAsync(ImageRequest request, CancellationToken cancellationToken = default) =>
            Items(request.Prompt == "after", () => new ImageStreamEvent { Type = "image_generation.partial_image" }, cancellationToken);

        public Task<ImageResponse> ImageEditAsync(ImageEditRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public IAsyncEnumerable<ImageStreamEvent> ImageEditStreamAsync(ImageEditRequest request, CancellationToken cancellationToken = default) =>
            Items(request.Prompt == "after", () => new ImageStreamEvent { Type = "image_edit.partial_image" }, cancellationToken);

        public Task<ImageResponse> ImageVariationAsync(ImageEditRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public Task<RerankResponse> RerankAsync(RerankRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public Task<AudioResponse> SpeechAsync(SpeechRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public Task<AudioResponse> TranscriptionAsync(TranscriptionRequest request, CancellationToken cancellationToken = default) => throw Boom();

        public Task<AudioResponse> TranslationAsync(TranscriptionRequest request, CancellationToken cancellationToken = default) => throw Boom();

        private static Dictionary<string, JsonElement> Marker() => new() { ["marker"] = JsonDocument.Parse("\"first\"").RootElement.Clone() };

        private static async IAsyncEnumerable<T> Items<T>(bool first, Func<T> item, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            await Task.Yield();
            if (first)
            {
                yield return item();
            }

            throw Boom();
        }
    }

    private sealed class ThrowingStore(IJobStore inner) : DelegatingJobStore(inner)
    {
        public override ValueTask<JobRecord> EnqueueAsync(NewJob job, CancellationToken cancellationToken) => throw Boom();

        public override ValueTask<JobRecord?> GetAsync(string id, CancellationToken cancellationToken) => throw Boom();

        public override ValueTask<JobResultReader?> OpenResultAsync(string id, CancellationToken cancellationToken) => throw Boom();

        public override ValueTask<IReadOnlyList<JobRecord>> ListAsync(string owner, string? kind, int limit, string? after, CancellationToken cancellationToken) => throw Boom();

        public override ValueTask<long> CountUnfinishedAsync(CancellationToken cancellationToken) => throw Boom();
    }

    private sealed class ThrowingPlugin : IBifrostPlugin
    {
        public string Name => "throwing";

        public ValueTask PreHookAsync(BifrostPluginContext context, CancellationToken cancellationToken) => throw Boom();
    }

    private sealed class ThrowingOwnerResolver : IJobOwnerResolver
    {
        public string ResolveOwner(HttpContext context) => throw Boom();
    }
}
