using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using OpenAI;
using OpenAI.Chat;
using static Bifrost.Middleware.Tests.Jobs.AsyncTestKit;

namespace Bifrost.Middleware.Tests.Jobs;

/// <summary>Async inference through the official OpenAI .NET SDK, with the Bifrost headers set through request options.</summary>
public sealed class AsyncOpenAISdkTests
{
    [Fact]
    public async Task The_official_sdk_submits_with_x_bf_async_and_polls_with_x_bf_async_id()
    {
        await using var host = await GatewayHost.StartAsync();
        var chat = CreateClient(host).GetChatClient("local/echo");
        var json = ChatBody("Hello from the OpenAI SDK", metadata: ("local_delay_ms", "300"));

        var submitted = await chat.CompleteChatAsync(BinaryContent.Create(BinaryData.FromString(json)), WithHeader("x-bf-async", "true"));
        using var submittedJson = JsonDocument.Parse(submitted.GetRawResponse().Content);
        Assert.Equal(200, submitted.GetRawResponse().Status);
        var id = submittedJson.RootElement.GetProperty("id").GetString()!;
        AssertPendingShape(submittedJson.RootElement, id);

        var raw = await EventuallyAsync("the SDK poll to return choices", async () =>
        {
            var poll = await chat.CompleteChatAsync(BinaryContent.Create(BinaryData.FromString(json)), WithHeader("x-bf-async-id", id));
            using var doc = JsonDocument.Parse(poll.GetRawResponse().Content);
            return doc.RootElement.GetProperty("choices").GetArrayLength() > 0 ? poll.GetRawResponse() : null;
        });

        var completion = ModelReaderWriter.Read<ChatCompletion>(raw.Content);
        Assert.NotNull(completion);
        Assert.Equal("Hello from the OpenAI SDK", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.True(completion.Usage.TotalTokenCount > 0);
    }

    [Fact]
    public async Task The_official_sdk_sees_a_failed_job_as_a_client_result_exception_with_its_status()
    {
        await using var host = await GatewayHost.StartAsync();
        var chat = CreateClient(host).GetChatClient("local/echo");
        var json = ChatBody("no", metadata: ("local_status", "403"));

        var submitted = await chat.CompleteChatAsync(BinaryContent.Create(BinaryData.FromString(json)), WithHeader("x-bf-async", "true"));
        var id = JsonDocument.Parse(submitted.GetRawResponse().Content).RootElement.GetProperty("id").GetString()!;

        var failure = await EventuallyAsync("the SDK poll to fail", async () =>
        {
            try
            {
                await chat.CompleteChatAsync(BinaryContent.Create(BinaryData.FromString("{}")), WithHeader("x-bf-async-id", id));
                return null;
            }
            catch (ClientResultException ex)
            {
                return ex;
            }
        });
        Assert.Equal(403, failure.Status);
        Assert.Contains("Scripted failure", failure.Message, StringComparison.Ordinal);
    }

    private static OpenAIClient CreateClient(GatewayHost host) =>
        new(new ApiKeyCredential("sk-test"), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(host.Server.CreateClient()),
            RetryPolicy = new ClientRetryPolicy(0),
        });

    private static RequestOptions WithHeader(string name, string value)
    {
        var options = new RequestOptions { CancellationToken = Ct };
        options.AddHeader(name, value);
        return options;
    }
}
