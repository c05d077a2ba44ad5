using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Vertex;
using Bifrost.Middleware.Tests.Anthropic;
using Bifrost.Middleware.Tests.Gemini;

namespace Bifrost.Middleware.Tests.Vertex;

/// <summary>
/// The Vertex AI adapter against the fake Vertex upstream: URLs (regional, global, project/location, publisher per model),
/// the bodies sent for Gemini and Claude models, both kinds of streams, errors in both shapes, embeddings and token counting.
/// </summary>
public sealed class VertexAdapterTests : VertexTestBase
{
    private const string Claude = "claude-sonnet-4-5@20250929";

    [Theory]
    [InlineData(null, "gemini-2.5-flash", "generateContent", "https://us-central1-aiplatform.googleapis.com/v1/projects/my-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent")]
    [InlineData("europe-west4", "gemini-2.5-pro", "streamGenerateContent", "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-project/locations/europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent")]
    [InlineData("global", "claude-haiku-4-5@20251001", "rawPredict", "https://aiplatform.googleapis.com/v1/projects/my-project/locations/global/publishers/anthropic/models/claude-haiku-4-5@20251001:rawPredict")]
    [InlineData("us-east5", "claude-opus-4-1@20250805", "streamRawPredict", "https://us-east5-aiplatform.googleapis.com/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-opus-4-1@20250805:streamRawPredict")]
    [InlineData("us-central1", "text-embedding-005", "predict", "https://us-central1-aiplatform.googleapis.com/v1/projects/my-project/locations/us-central1/publishers/google/models/text-embedding-005:predict")]
    public void Urls_are_regional_or_global_with_the_project_location_and_publisher(string? region, string model, string method, string expected)
    {
        var context = new ProviderContext("vertex", new ProviderOptions { Type = "vertex", ProjectId = Project, Region = region }, model, "t");

        Assert.Equal(expected, VertexAdapter.Endpoint(context, method).AbsoluteUri);
    }

    [Fact]
    public void Express_mode_urls_have_no_project_or_location()
    {
        var context = new ProviderContext("vertex", new ProviderOptions { Type = "vertex", Region = "europe-west4", AuthHeader = "x-goog-api-key" }, "gemini-2.5-flash", "k");

        Assert.Equal("https://aiplatform.googleapis.com/v1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse", VertexAdapter.Endpoint(context, "streamGenerateContent", "?alt=sse").AbsoluteUri);
    }

    [Fact]
    public async Task Express_mode_sends_the_API_key_in_x_goog_api_key_to_the_project_less_url()
    {
        var context = Context(configure: o => { o.ProjectId = null; o.AuthHeader = "x-goog-api-key"; }, key: FakeVertexUpstream.ExpressKey);

        var response = await Adapter.ChatCompletionAsync(context, Hello("gemini-2.5-flash"), Ct);

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1/publishers/google/models/gemini-2.5-flash:generateContent", sent.Path);
        Assert.Equal(FakeVertexUpstream.ExpressKey, sent.Headers["x-goog-api-key"]);
        Assert.False(sent.Headers.ContainsKey("authorization"));
        Assert.Equal("echo: Hi Vertex", Assert.Single(response.Choices).Message!.Content);
    }

    [Fact]
    public async Task Express_mode_refuses_Claude_models_without_calling_Vertex()
    {
        var context = Context(Claude, o => { o.ProjectId = null; o.AuthHeader = "x-goog-api-key"; }, FakeVertexUpstream.ExpressKey);

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(context, Hello(Claude), Ct));

        Assert.Equal(400, error.StatusCode);
        Assert.Contains("Claude models in Vertex AI express mode", error.Error.Error.Message, StringComparison.Ordinal);
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task An_invalid_express_key_is_a_401_without_the_key()
    {
        const string key = "AQ.WRONG-secret-express-key";
        var context = Context(configure: o => { o.ProjectId = null; o.AuthHeader = "x-goog-api-key"; }, key: key);

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(context, Hello("gemini-2.5-flash"), Ct));

        Assert.Equal(401, error.StatusCode);
        Assert.Equal("API_KEY_INVALID", error.Error.Error.Code);
        Assert.DoesNotContain(key, error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_model_name_is_one_escaped_path_segment()
    {
        var context = new ProviderContext("vertex", new ProviderOptions { Type = "vertex", ProjectId = Project, BaseUrl = "https://proxy.example.com/v1/" }, "tuned/../x?y", "t");

        Assert.Equal("https://proxy.example.com/v1/projects/my-project/locations/us-central1/publishers/google/models/tuned%2F..%2Fx%3Fy:generateContent", VertexAdapter.Endpoint(context, "generateContent").AbsoluteUri);
    }

    [Fact]
    public async Task Gemini_chat_posts_generateContent_with_the_bearer_token_and_translates_the_answer()
    {
        var request = Chat("""{"model":"gemini-2.5-flash","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi Vertex"}],"max_tokens":100,"temperature":0.3}""");

        var response = await Adapter.ChatCompletionAsync(Context(), request, Ct);

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("POST", sent.Method);
        Assert.Equal("/v1/projects/my-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:generateContent", sent.Path);
        Assert.Equal(string.Empty, sent.Query);
        Assert.Equal("Bearer " + FakeVertexUpstream.Token, sent.Headers["authorization"]);
        Assert.False(sent.Headers.ContainsKey("x-goog-api-key"));
        Assert.Equal(
            """{"contents":[{"role":"user","parts":[{"text":"Hi Vertex"}]}],"systemInstruction":{"parts":[{"text":"Be brief."}]},"generationConfig":{"temperature":0.3,"maxOutputTokens":100}}""",
            sent.Body!.ToJsonString());
        Assert.Equal("gemini-2.5-flash", response.Model);
        var choice = Assert.Single(response.Choices);
        Assert.Equal("echo: Hi Vertex", choice.Message!.Content);
        Assert.Equal("stop", choice.FinishReason);
        Assert.Equal(12, response.Usage!.PromptTokens);
        Assert.Equal(21, response.Usage.TotalTokens);
    }

    [Fact]
    public async Task Function_call_and_response_ids_are_not_sent_to_Vertex()
    {
        var request = Chat("""
            {"model":"gemini-2.5-flash","messages":[
              {"role":"user","content":"Weather in Paris?"},
              {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"sunny"}],
             "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}
            """);

        await Adapter.ChatCompletionAsync(Context(), request, Ct);

        var contents = Assert.Single(Upstream.Requests).Body!["contents"]!.AsArray();
        var call = contents[1]!["parts"]![0]!["functionCall"]!.AsObject();
        Assert.Equal("""{"name":"get_weather","args":{"city":"Paris"}}""", call.ToJsonString());
        var answer = contents[2]!["parts"]![0]!["functionResponse"]!.AsObject();
        Assert.Equal("get_weather", answer["name"]!.GetValue<string>());
        Assert.False(answer.ContainsKey("id"));
    }

    [Fact]
    public async Task Gemini_streams_use_streamGenerateContent_with_alt_sse()
    {
        var request = Hello("gemini-2.5-flash");
        request.Stream = true;
        request.StreamOptions = new ChatStreamOptions { IncludeUsage = true };

        var chunks = await CollectAsync(Adapter.StreamChatCompletionAsync(Context(), request, Ct));

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1/projects/my-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:streamGenerateContent", sent.Path);
        Assert.Equal("?alt=sse", sent.Query);
        Assert.Equal("text/event-stream", sent.Headers["accept"]);
        Assert.Equal("echo: Hi Vertex", Content(chunks));
        Assert.Equal("stop", chunks.SelectMany(static c => c.Choices).Select(static c => c.FinishReason).Last(static r => r is not null));
        Assert.Equal(21, chunks[^1].Usage!.TotalTokens);
    }

    [Fact]
    public async Task A_Gemini_stream_that_ends_without_a_finish_reason_is_a_502()
    {
        Upstream.RawStream = response => [FakeGeminiUpstream.Sse(new JsonObject { ["candidates"] = new JsonArray(new JsonObject { ["content"] = new JsonObject { ["role"] = "model", ["parts"] = new JsonArray(FakeGeminiUpstream.Text("half")) }, ["index"] = 0 }) })];

        var error = await Assert.ThrowsAsync<BifrostException>(() => CollectAsync(Adapter.StreamChatCompletionAsync(Context(), Hello("gemini-2.5-flash"), Ct)));

        Assert.Equal(502, error.StatusCode);
        Assert.Equal("incomplete_stream", error.Error.Error.Code);
    }

    [Fact]
    public async Task Claude_chat_posts_rawPredict_with_the_Anthropic_body_without_model_and_with_the_Vertex_version()
    {
        var request = Chat($$"""{"model":"{{Claude}}","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi Vertex"}],"max_tokens":200,"stop":["END"]}""");

        var response = await Adapter.ChatCompletionAsync(Context(Claude), request, Ct);

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict", sent.Path);
        Assert.Equal("Bearer " + FakeVertexUpstream.Token, sent.Headers["authorization"]);
        Assert.False(sent.Headers.ContainsKey("x-api-key"));
        Assert.False(sent.Headers.ContainsKey("anthropic-version"));
        var body = sent.Body!;
        Assert.False(body.ContainsKey("model"));
        Assert.False(body.ContainsKey("stream"));
        Assert.Equal("vertex-2023-10-16", body["anthropic_version"]!.GetValue<string>());
        Assert.Equal(200, body["max_tokens"]!.GetValue<int>());
        Assert.Equal("""["END"]""", body["stop_sequences"]!.ToJsonString());
        Assert.Equal("Be brief.", body["system"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("Hi Vertex", FakeAnthropicUpstream.LastUserText(body));

        Assert.Equal(Claude, response.Model);
        var choice = Assert.Single(response.Choices);
        Assert.Equal("echo: Hi Vertex", choice.Message!.Content);
        Assert.Equal("stop", choice.FinishReason);
        Assert.Equal(12, response.Usage!.PromptTokens);
        Assert.Equal(9, response.Usage.CompletionTokens);
    }

    [Fact]
    public async Task Anthropic_beta_flags_go_in_the_body_not_in_a_header()
    {
        var request = Chat($$"""{"model":"{{Claude}}","messages":[{"role":"user","content":"Hi"}],"anthropic_beta":["output-128k-2025-02-19"]}""");

        await Adapter.ChatCompletionAsync(Context(Claude, o => o.Headers["anthropic-beta"] = "context-1m-2025-08-07, interleaved-thinking-2025-05-14"), request, Ct);

        var sent = Assert.Single(Upstream.Requests);
        Assert.False(sent.Headers.ContainsKey("anthropic-beta"));
        Assert.Equal("""["context-1m-2025-08-07","interleaved-thinking-2025-05-14","output-128k-2025-02-19"]""", sent.Body!["anthropic_beta"]!.ToJsonString());
    }

    [Fact]
    public async Task Claude_streams_use_streamRawPredict_with_stream_true()
    {
        var request = Hello(Claude);
        request.Stream = true;
        request.StreamOptions = new ChatStreamOptions { IncludeUsage = true };

        var chunks = await CollectAsync(Adapter.StreamChatCompletionAsync(Context(Claude), request, Ct));

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict", sent.Path);
        Assert.True(sent.Body!["stream"]!.GetValue<bool>());
        Assert.False(sent.Body.ContainsKey("model"));
        Assert.Equal("echo: Hi Vertex", Content(chunks));
        Assert.Equal("stop", chunks.SelectMany(static c => c.Choices).Select(static c => c.FinishReason).Last(static r => r is not null));
        Assert.Equal(21, chunks[^1].Usage!.TotalTokens);
    }

    [Fact]
    public async Task A_Claude_stream_that_ends_before_message_stop_is_a_502()
    {
        Upstream.RawStream = message => FakeAnthropicUpstream.Events(message).Take(3);

        var error = await Assert.ThrowsAsync<BifrostException>(() => CollectAsync(Adapter.StreamChatCompletionAsync(Context(Claude), Hello(Claude), Ct)));

        Assert.Equal(502, error.StatusCode);
        Assert.Equal("incomplete_stream", error.Error.Error.Code);
    }

    [Fact]
    public async Task The_global_location_reaches_the_global_path()
    {
        await Adapter.ChatCompletionAsync(Context(Claude, o => o.Region = "global"), Hello(Claude), Ct);

        Assert.Equal("/v1/projects/my-project/locations/global/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict", Assert.Single(Upstream.Requests).Path);
    }

    [Fact]
    public async Task A_Google_rate_limit_with_RetryInfo_is_a_retryable_429_with_the_delay()
    {
        Upstream.Failures.Enqueue(new FakeVertexUpstream.Failure(429, "Quota exceeded for aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model.", "RATE_LIMIT_EXCEEDED", TimeSpan.FromSeconds(12.5)));

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(), Hello("gemini-2.5-flash"), Ct));

        Assert.Equal(429, error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.Equal(TimeSpan.FromSeconds(12.5), error.RetryAfter);
        Assert.Equal("rate_limit_error", error.Error.Error.Type);
        Assert.Equal("RATE_LIMIT_EXCEEDED", error.Error.Error.Code);
    }

    [Fact]
    public async Task A_Claude_error_in_Anthropics_shape_passes_its_type_status_and_retry_after()
    {
        Upstream.Failures.Enqueue(new FakeVertexUpstream.Failure(529, "Overloaded", RetryDelay: TimeSpan.FromSeconds(3), Anthropic: true));

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(Claude), Hello(Claude), Ct));

        Assert.Equal(529, error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.Equal("overloaded_error", error.Error.Error.Type);
        Assert.Equal("Overloaded", error.Error.Error.Message);
        Assert.Equal(TimeSpan.FromSeconds(3), error.RetryAfter);
    }

    [Fact]
    public async Task A_Claude_call_refused_by_Vertex_itself_is_read_from_Googles_envelope()
    {
        Upstream.Failures.Enqueue(new FakeVertexUpstream.Failure(429, "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model with base model: anthropic-claude-sonnet-4-5.", "RATE_LIMIT_EXCEEDED", TimeSpan.FromSeconds(7)));

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(Claude), Hello(Claude), Ct));

        Assert.Equal(429, error.StatusCode);
        Assert.True(error.IsRetryable);
        Assert.Equal(TimeSpan.FromSeconds(7), error.RetryAfter);
        Assert.Equal("RATE_LIMIT_EXCEEDED", error.Error.Error.Code);
        Assert.StartsWith("Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model", error.Error.Error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("gemini-2.5-flash")]
    [InlineData(Claude)]
    public async Task A_refused_token_is_a_401_and_the_token_is_in_no_error(string model)
    {
        const string token = "ya29.WRONG-secret-token-value";

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.ChatCompletionAsync(Context(model, key: token), Hello(model), Ct));

        Assert.Equal(401, error.StatusCode);
        Assert.False(error.IsRetryable);
        Assert.Equal("authentication_error", error.Error.Error.Type);
        Assert.Equal("Bearer " + token, Assert.Single(Upstream.Requests).Headers["authorization"]);
        Assert.DoesNotContain(token, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(token, System.Text.Json.JsonSerializer.Serialize(error.Error, Bifrost.Middleware.Serialization.BifrostJson.Context.BifrostError), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Embeddings_use_predict_with_instances_and_sum_the_token_counts()
    {
        var request = new EmbeddingRequest { Model = "text-embedding-005", Input = TextInput.FromStrings("hello world", "one two three"), Dimensions = 2 };
        request.AdditionalProperties = new Dictionary<string, System.Text.Json.JsonElement> { ["task_type"] = System.Text.Json.JsonSerializer.SerializeToElement("RETRIEVAL_DOCUMENT") };

        var response = await Adapter.EmbeddingsAsync(Context("text-embedding-005"), request, Ct);

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1/projects/my-project/locations/us-east5/publishers/google/models/text-embedding-005:predict", sent.Path);
        Assert.Equal(
            """{"instances":[{"content":"hello world","task_type":"RETRIEVAL_DOCUMENT"},{"content":"one two three","task_type":"RETRIEVAL_DOCUMENT"}],"parameters":{"outputDimensionality":2}}""",
            sent.Body!.ToJsonString());
        Assert.Equal(2, response.Data.Count);
        Assert.Equal([0, 1], response.Data.Select(static d => d.Index));
        Assert.Equal([11f, 11.25f], response.Data[0].Embedding.ToFloats());
        Assert.Equal([13f, 13.25f], response.Data[1].Embedding.ToFloats());
        Assert.Equal(5, response.Usage!.PromptTokens);
        Assert.Equal(5, response.Usage.TotalTokens);
        Assert.Equal("text-embedding-005", response.Model);
    }

    [Fact]
    public async Task Many_embedding_inputs_are_split_into_predict_calls_in_order()
    {
        var texts = Enumerable.Range(0, VertexAdapter.MaxPredictInstances + 3).Select(static i => new string('x', i + 1)).ToArray();

        var response = await Adapter.EmbeddingsAsync(Context("text-embedding-005"), new EmbeddingRequest { Model = "text-embedding-005", Input = TextInput.FromStrings(texts) }, Ct);

        Assert.Equal([VertexAdapter.MaxPredictInstances, 3], Upstream.Requests.Select(static r => r.Body!["instances"]!.AsArray().Count));
        Assert.Equal(texts.Length, response.Data.Count);
        Assert.Equal(texts.Length, response.Data[^1].Embedding.ToFloats()[0]);
        Assert.Equal(texts.Length, response.Usage!.PromptTokens);
    }

    [Fact]
    public async Task Claude_models_have_no_embeddings()
    {
        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.EmbeddingsAsync(Context(Claude), new EmbeddingRequest { Model = Claude, Input = TextInput.FromString("x") }, Ct));

        Assert.Equal(400, error.StatusCode);
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Gemini_input_tokens_are_counted_with_countTokens_fields_at_the_top_level()
    {
        Upstream.CountTokensResult = 77;
        var request = new ResponsesRequest { Model = "gemini-2.5-flash", Instructions = "Be brief.", Input = new ResponsesInput("How many tokens?") };

        var count = await Adapter.CountInputTokensAsync(Context(), request, Ct);

        Assert.Equal(77, count);
        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1/projects/my-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:countTokens", sent.Path);
        Assert.Equal(
            """{"contents":[{"role":"user","parts":[{"text":"How many tokens?"}]}],"systemInstruction":{"parts":[{"text":"Be brief."}]}}""",
            sent.Body!.ToJsonString());
    }

    [Fact]
    public async Task Claude_input_tokens_are_counted_with_count_tokens_rawPredict_and_the_model_in_the_body()
    {
        Upstream.CountTokensResult = 31;
        var request = new ResponsesRequest { Model = "vertex/" + Claude, Instructions = "Be brief.", Input = new ResponsesInput("How many tokens?") };

        var count = await Adapter.CountInputTokensAsync(Context(Claude, o => o.Headers["anthropic-beta"] = "token-efficient-tools-2025-02-19"), request, Ct);

        Assert.Equal(31, count);
        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict", sent.Path);
        Assert.Equal($"Bearer {FakeVertexUpstream.Token}", sent.Headers["authorization"]);
        Assert.False(sent.Headers.ContainsKey("anthropic-beta"));
        var body = sent.Body!;
        Assert.Equal(["model", "messages", "system", "anthropic_version", "anthropic_beta"], body.Select(p => p.Key));
        Assert.Equal(Claude, body["model"]!.GetValue<string>());
        Assert.Equal("Be brief.", body["system"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("user", body["messages"]![0]!["role"]!.GetValue<string>());
        Assert.Contains("How many tokens?", body["messages"]![0]!["content"]!.ToJsonString(), StringComparison.Ordinal);
        Assert.Equal("vertex-2023-10-16", body["anthropic_version"]!.GetValue<string>());
        Assert.Equal("""["token-efficient-tools-2025-02-19"]""", body["anthropic_beta"]!.ToJsonString());
    }

    [Fact]
    public async Task A_Claude_count_the_upstream_refuses_is_its_error()
    {
        Upstream.ValidTokens.Clear();

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.CountInputTokensAsync(Context(Claude), new ResponsesRequest { Model = Claude, Input = new ResponsesInput("x") }, Ct));

        Assert.Equal(401, error.StatusCode);
        Assert.Equal("/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict", Assert.Single(Upstream.Requests).Path);
    }

    [Fact]
    public async Task Claude_input_tokens_in_express_mode_are_left_to_the_local_estimate()
    {
        var count = await Adapter.CountInputTokensAsync(Context(Claude, o => o.ProjectId = null), new ResponsesRequest { Model = Claude, Input = new ResponsesInput("How many tokens?") }, Ct);

        Assert.Null(count);
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Models_are_the_configured_ones()
    {
        var models = await ((IProviderAdapter)Adapter).ListModelsAsync(Context(string.Empty, o => o.Models = ["gemini-2.5-flash", Claude]), Ct);

        Assert.Equal(["gemini-2.5-flash", Claude], models.Select(static m => m.Id));
        Assert.Empty(Upstream.Requests);
    }
}
