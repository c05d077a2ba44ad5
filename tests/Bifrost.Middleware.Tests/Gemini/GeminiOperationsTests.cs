using Bifrost.Middleware.Providers.Gemini;

namespace Bifrost.Middleware.Tests.Gemini;

/// <summary>Embeddings (embedContent / batchEmbedContents), countTokens, the paged model list, and what Gemini lacks.</summary>
public sealed class GeminiOperationsTests : GeminiTestBase
{
    private ServiceProvider _services = null!;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _services = new ServiceCollection().AddBifrost().Services.BuildServiceProvider();
        Adapter = _services.GetRequiredService<GeminiAdapter>();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task One_input_embeds_with_embedContent_and_dimensions_become_outputDimensionality()
    {
        var request = new EmbeddingRequest { Model = "gemini-embedding-001", Input = TextInput.FromString("hello"), Dimensions = 2 };
        request.AdditionalProperties = new Dictionary<string, System.Text.Json.JsonElement> { ["task_type"] = System.Text.Json.JsonSerializer.SerializeToElement("RETRIEVAL_QUERY") };

        var response = await Adapter.EmbeddingsAsync(Context("gemini-embedding-001"), request, Ct);

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1beta/models/gemini-embedding-001:embedContent", sent.Path);
        Assert.Equal("""{"content":{"parts":[{"text":"hello"}]},"taskType":"RETRIEVAL_QUERY","outputDimensionality":2}""", Sent(sent).ToJsonString());
        var data = Assert.Single(response.Data);
        Assert.Equal(0, data.Index);
        Assert.Equal([5f, 5.25f], data.Embedding.ToFloats());
        Assert.Equal("gemini-embedding-001", response.Model);
    }

    [Fact]
    public async Task A_list_embeds_with_batchEmbedContents_in_order()
    {
        var request = new EmbeddingRequest { Model = "gemini-embedding-001", Input = TextInput.FromStrings("a", "bbb") };

        var response = await Adapter.EmbeddingsAsync(Context("gemini-embedding-001"), request, Ct);

        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1beta/models/gemini-embedding-001:batchEmbedContents", sent.Path);
        Assert.Equal(
            """{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]}},{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"bbb"}]}}]}""",
            Sent(sent).ToJsonString());
        Assert.Equal([0, 1], response.Data.Select(d => d.Index));
        Assert.Equal([1f, 1.25f, 1.5f], response.Data[0].Embedding.ToFloats());
        Assert.Equal([3f, 3.25f, 3.5f], response.Data[1].Embedding.ToFloats());
    }

    [Fact]
    public async Task More_than_100_inputs_are_split_into_batches()
    {
        var texts = Enumerable.Range(0, 150).Select(i => new string('x', (i % 7) + 1)).ToArray();

        var response = await Adapter.EmbeddingsAsync(Context("gemini-embedding-001"), new EmbeddingRequest { Model = "gemini-embedding-001", Input = TextInput.FromStrings(texts) }, Ct);

        Assert.Equal([100, 50], Upstream.Requests.Select(r => r.Body!["requests"]!.AsArray().Count));
        Assert.Equal(Enumerable.Range(0, 150), response.Data.Select(d => d.Index));
        Assert.Equal(texts[149].Length, response.Data[149].Embedding.ToFloats()[0]);
    }

    [Fact]
    public async Task Token_array_input_is_a_400()
    {
        var request = System.Text.Json.JsonSerializer.Deserialize("""{"model":"e","input":[[1,2,3]]}""", Bifrost.Middleware.Serialization.BifrostJson.Context.EmbeddingRequest)!;

        var error = await Assert.ThrowsAsync<BifrostException>(() => Adapter.EmbeddingsAsync(Context("e"), request, Ct));

        Assert.Equal((400, "input"), (error.StatusCode, error.Error.Error.Param));
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Input_tokens_are_counted_with_countTokens_over_a_generateContentRequest()
    {
        Upstream.CountTokensResult = 77;
        var request = new ResponsesRequest { Model = "gemini-2.5-flash", Instructions = "Be brief.", Input = new ResponsesInput("How many tokens?") };

        var count = await Adapter.CountInputTokensAsync(Context(), request, Ct);

        Assert.Equal(77, count);
        var sent = Assert.Single(Upstream.Requests);
        Assert.Equal("/v1beta/models/gemini-2.5-flash:countTokens", sent.Path);
        Assert.Equal(
            """{"generateContentRequest":{"model":"models/gemini-2.5-flash","contents":[{"role":"user","parts":[{"text":"How many tokens?"}]}],"systemInstruction":{"parts":[{"text":"Be brief."}]}}}""",
            Sent(sent).ToJsonString());
    }

    [Fact]
    public async Task Models_are_listed_page_by_page_without_the_models_prefix()
    {
        var models = await Adapter.ListModelsAsync(Context(string.Empty), Ct);

        Assert.Equal(["gemini-2.5-pro", "gemini-2.5-flash", "gemini-embedding-001"], models.Select(m => m.Id));
        Assert.Equal("GEMINI-2.5-PRO", models[0].AdditionalProperties!["display_name"].GetString());
        Assert.Equal(["?pageSize=1000", "?pageSize=1000&pageToken=2"], Upstream.Requests.Select(r => r.Query));
        Assert.All(Upstream.Requests, r => Assert.Equal(FakeGeminiUpstream.Key, r.Headers["x-goog-api-key"]));
    }

    [Fact]
    public async Task Configured_models_are_listed_without_a_call()
    {
        var models = await Adapter.ListModelsAsync(Context(string.Empty, o => o.Models = ["gemini-2.5-flash"]), Ct);

        Assert.Equal("gemini-2.5-flash", Assert.Single(models).Id);
        Assert.Empty(Upstream.Requests);
    }

    [Fact]
    public async Task Text_completions_and_native_Responses_are_unsupported_operations()
    {
        IProviderAdapter contract = Adapter;

        var text = await Assert.ThrowsAsync<BifrostException>(() => contract.TextCompletionAsync(Context(), new TextCompletionRequest { Model = "m", Prompt = TextInput.FromString("x") }, Ct));

        Assert.Equal((400, "unsupported_operation"), (text.StatusCode, text.Error.Error.Code));
        Assert.False(contract.SupportsNativeResponses(Context()));
        Assert.Empty(Upstream.Requests);
    }
}
