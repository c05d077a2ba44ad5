using System.Buffers.Binary;
using System.Net;
using System.Text.Json;
using Bifrost.Middleware.Tests.Jobs;
using Microsoft.Extensions.AI;
using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Tests.ChatClientBridge;

/// <summary>Embeddings through an IEmbeddingGenerator, the operations the bridge does not offer, registration and models.</summary>
public sealed class ChatClientProviderTests
{
    [Fact]
    public async Task Embeddings_as_floats_carry_dimensions_model_usage_and_unknown_fields()
    {
        var embeddings = new FakeEmbeddingGenerator();
        await using var host = await BridgeHost.StartAsync(new FakeChatClient(), embeddings);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/embeddings", """
            {"model":"mea/text-embed","input":["one","two words"],"dimensions":4,"user":"u-9","x_truncate":"end"}
            """);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var call = Assert.Single(embeddings.Calls);
        Assert.Equal(["one", "two words"], call.Values);
        Assert.Equal(4, call.Options!.Dimensions);
        Assert.Equal("text-embed", call.Options.ModelId);
        Assert.Equal("u-9", call.Options.AdditionalProperties!["user"]);
        Assert.Equal("end", ((JsonElement)call.Options.AdditionalProperties["x_truncate"]!).GetString());

        Assert.Equal("list", body.GetProperty("object").GetString());
        Assert.Equal("fake-embed-1", body.GetProperty("model").GetString());
        var data = body.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(2, data.Count);
        Assert.Equal([0, 1], data.Select(d => d.GetProperty("index").GetInt32()));
        Assert.Equal(FakeEmbeddingGenerator.VectorOf("two words", 4), data[1].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()));
        Assert.Equal(3, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(3, body.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Embeddings_as_base64_are_little_endian_float32()
    {
        var embeddings = new FakeEmbeddingGenerator();
        await using var host = await BridgeHost.StartAsync(new FakeChatClient(), embeddings);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/embeddings", """{"model":"mea/text-embed","input":"solo","encoding_format":"base64"}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bytes = Convert.FromBase64String(Assert.Single(body.GetProperty("data").EnumerateArray()).GetProperty("embedding").GetString()!);
        var floats = Enumerable.Range(0, bytes.Length / 4).Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4))).ToArray();
        Assert.Equal(FakeEmbeddingGenerator.VectorOf("solo", 3), floats);
        Assert.Null(Assert.Single(embeddings.Calls).Options!.Dimensions);
    }

    [Fact]
    public async Task Embeddings_through_the_in_process_client()
    {
        var services = new ServiceCollection();
        services.AddBifrost().AddChatClientProvider("mea", _ => new FakeChatClient(), _ => new FakeEmbeddingGenerator());
        await using var provider = services.BuildServiceProvider();

        var response = await provider.GetRequiredService<IBifrostClient>().EmbeddingsAsync(
            new EmbeddingRequest { Model = "mea/e", Input = new TextInput(["abc"], single: true), Dimensions = 2 },
            TestContext.Current.CancellationToken);

        Assert.Equal(FakeEmbeddingGenerator.VectorOf("abc", 2), Assert.Single(response.Data).Embedding.ToFloats());
        Assert.Equal("mea", response.ExtraFields!.Provider);
    }

    [Fact]
    public async Task Token_id_input_cannot_reach_a_string_embedding_generator()
    {
        var embeddings = new FakeEmbeddingGenerator();
        await using var host = await BridgeHost.StartAsync(new FakeChatClient(), embeddings);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/embeddings", """{"model":"mea/e","input":[[1,2,3]]}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("input", body.GetProperty("error").GetProperty("param").GetString());
        Assert.Empty(embeddings.Calls);
    }

    [Fact]
    public async Task Without_an_embedding_generator_embeddings_are_unsupported()
    {
        await using var host = await BridgeHost.StartAsync(new FakeChatClient());

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/embeddings", """{"model":"mea/e","input":"x"}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("unsupported_operation", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("'mea'", body.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Text_completions_are_unsupported_with_the_default_400()
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat, new FakeEmbeddingGenerator());

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/completions", """{"model":"mea/m","prompt":"once upon"}""");
        var (streamed, streamedBody) = await BridgeHost.PostAsync(host, "/openai/v1/completions", """{"model":"mea/m","prompt":"once upon","stream":true}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("unsupported_operation", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, streamed.StatusCode);
        Assert.Equal("unsupported_operation", streamedBody.GetProperty("error").GetProperty("code").GetString());
        Assert.Empty(chat.Calls);
    }

    [Fact]
    public async Task The_responses_api_runs_through_the_chat_client()
    {
        var chat = new FakeChatClient
        {
            OnResponse = _ => Task.FromResult(new ChatResponse(new AI.ChatMessage(ChatRole.Assistant, "answered via chat"))
            {
                Usage = new UsageDetails { InputTokenCount = 3, OutputTokenCount = 3, TotalTokenCount = 6 },
            }),
        };
        await using var host = await BridgeHost.StartAsync(chat);

        var (response, body) = await BridgeHost.PostAsync(host, "/openai/v1/responses", """{"model":"mea/m","instructions":"be brief","input":"hello"}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("answered via chat", body.GetRawText(), StringComparison.Ordinal);
        var messages = Assert.Single(chat.Calls).Messages;
        Assert.Equal([ChatRole.System, ChatRole.User], messages.Select(m => m.Role));
    }

    [Fact]
    public async Task Async_inference_runs_through_the_chat_client()
    {
        var chat = new FakeChatClient();
        await using var host = await BridgeHost.StartAsync(chat);

        var id = await host.SubmitAsync(AsyncTestKit.ChatBody("later, please", model: "mea/m"));
        var (status, body) = await host.PollUntilFinishedAsync(id);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("hello", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("later, please", Assert.Single(chat.Calls).Messages[0].Text);
    }

    [Fact]
    public async Task Models_are_the_configured_ones_or_else_the_clients_defaults()
    {
        var chat = new FakeChatClient { Metadata = new ChatClientMetadata("fake", null, "fake-chat-1") };
        await using var host = await BridgeHost.StartAsync(chat, new FakeEmbeddingGenerator());
        await using var configured = await BridgeHost.StartAsync(chat, provider: p => p.Models = ["m-1", "m-2"]);

        var defaults = await GetJsonAsync(host.Client, "/openai/v1/models");
        var listed = await GetJsonAsync(configured.Client, "/openai/v1/models");

        var ids = defaults.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Contains("mea/fake-chat-1", ids);
        Assert.Contains("mea/fake-embed-1", ids);
        var configuredIds = listed.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).Where(id => id!.StartsWith("mea/", StringComparison.Ordinal)).ToList();
        Assert.Equal(["mea/m-1", "mea/m-2"], configuredIds);
    }

    [Fact]
    public async Task The_name_only_overload_takes_the_keyed_client_before_the_default_one()
    {
        var keyed = new FakeChatClient { OnResponse = _ => Task.FromResult(new ChatResponse(new AI.ChatMessage(ChatRole.Assistant, "keyed"))) };
        var unkeyed = new FakeChatClient { OnResponse = _ => Task.FromResult(new ChatResponse(new AI.ChatMessage(ChatRole.Assistant, "default"))) };
        var services = new ServiceCollection();
        services.AddKeyedSingleton<IChatClient>("mea", keyed);
        services.AddSingleton<IChatClient>(unkeyed);
        services.AddSingleton<IEmbeddingGenerator<string, Embedding<float>>>(new FakeEmbeddingGenerator());
        services.AddBifrost().AddChatClientProvider("mea").AddChatClientProvider("other");
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IBifrostClient>();
        var ct = TestContext.Current.CancellationToken;

        var fromKeyed = await client.ChatCompletionAsync(new ChatCompletionRequest { Model = "mea/m", Messages = [ChatCompletionMessage.FromText("user", "x")] }, ct);
        var fromDefault = await client.ChatCompletionAsync(new ChatCompletionRequest { Model = "other/m", Messages = [ChatCompletionMessage.FromText("user", "x")] }, ct);
        var embedded = await client.EmbeddingsAsync(new EmbeddingRequest { Model = "other/e", Input = new TextInput(["x"]) }, ct);

        Assert.Equal("keyed", fromKeyed.Choices[0].Message!.Content);
        Assert.Equal("default", fromDefault.Choices[0].Message!.Content);
        Assert.Single(embedded.Data);
        Assert.Single(keyed.Calls);
        Assert.Single(unkeyed.Calls);
    }

    [Fact]
    public void The_name_only_overload_without_a_registered_client_fails_clearly()
    {
        var services = new ServiceCollection();
        services.AddBifrost().AddChatClientProvider("mea");
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<IBifrostClient>());
        Assert.Contains("AddChatClient", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chat_and_streaming_through_the_in_process_client()
    {
        var chat = new FakeChatClient();
        var services = new ServiceCollection();
        services.AddBifrost().AddChatClientProvider("mea", _ => chat);
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IBifrostClient>();
        var ct = TestContext.Current.CancellationToken;

        var answer = await client.ChatCompletionAsync(new ChatCompletionRequest { Model = "mea/m", Messages = [ChatCompletionMessage.FromText("user", "x")] }, ct);
        var chunks = new List<ChatCompletionChunk>();
        await foreach (var chunk in client.ChatCompletionStreamAsync(new ChatCompletionRequest { Model = "mea/m", Messages = [ChatCompletionMessage.FromText("user", "x")] }, ct))
        {
            chunks.Add(chunk);
        }

        Assert.Equal("hello", answer.Choices[0].Message!.Content);
        Assert.Equal("mea", answer.ExtraFields!.Provider);
        Assert.Equal("hello", string.Concat(chunks.SelectMany(c => c.Choices).Select(c => c.Delta.Content)));
        Assert.Equal("stop", chunks[^1].Choices[0].FinishReason);
        Assert.Equal([false, true], chat.Calls.Select(c => c.Streaming));
        Assert.All(chat.Calls, c => Assert.Equal("m", c.Options!.ModelId));
    }

    [Fact]
    public void Registration_arguments_are_checked()
    {
        var builder = new ServiceCollection().AddBifrost();

        Assert.Throws<ArgumentNullException>(() => builder.AddChatClientProvider("mea", null!));
        Assert.Throws<ArgumentException>(() => builder.AddChatClientProvider("a/b", _ => new FakeChatClient()));
        Assert.Throws<ArgumentException>(() => builder.AddChatClientProvider(" ", _ => new FakeChatClient(), null));
    }

    private static async Task<JsonElement> GetJsonAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path, TestContext.Current.CancellationToken);
        response.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.Clone();
    }
}
