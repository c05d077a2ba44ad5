using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;
using OpenAI;
using AI = Microsoft.Extensions.AI;
using Sdk = OpenAI.Chat;

namespace Bifrost.Middleware.Tests.ChatClientBridge;

/// <summary>A whole tool-calling conversation, driven by the official OpenAI .NET SDK against an IChatClient provider.</summary>
public sealed class ChatClientToolRoundTripTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_sdk_gets_a_tool_call_answers_it_and_the_chat_client_sees_call_and_result()
    {
        var chat = new FakeChatClient
        {
            OnResponse = call =>
            {
                // Turn 1: ask for the tool. Turn 2: answer from the tool's result.
                var result = call.Messages.SelectMany(m => m.Contents).OfType<AI.FunctionResultContent>().SingleOrDefault();
                var response = result is null
                    ? new AI.ChatResponse(new AI.ChatMessage(AI.ChatRole.Assistant, [new AI.FunctionCallContent("call_w1", "get_weather", new Dictionary<string, object?> { ["city"] = "Paris" })]))
                    {
                        FinishReason = AI.ChatFinishReason.ToolCalls,
                    }
                    : new AI.ChatResponse(new AI.ChatMessage(AI.ChatRole.Assistant, $"Paris: {result.Result}"))
                    {
                        FinishReason = AI.ChatFinishReason.Stop,
                        Usage = new AI.UsageDetails { InputTokenCount = 30, OutputTokenCount = 4, TotalTokenCount = 34 },
                    };
                return Task.FromResult(response);
            },
        };
        await using var host = await BridgeHost.StartAsync(chat);
        var client = CreateClient(host).GetChatClient("mea/gpt-tools");
        var options = new Sdk.ChatCompletionOptions
        {
            Tools =
            {
                Sdk.ChatTool.CreateFunctionTool(
                    "get_weather",
                    "Gets the weather for a city",
                    BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""")),
            },
        };
        List<Sdk.ChatMessage> messages = [new Sdk.SystemChatMessage("You are terse."), new Sdk.UserChatMessage("Weather in Paris?")];

        Sdk.ChatCompletion first = await client.CompleteChatAsync(messages, options, Ct);

        Assert.Equal(Sdk.ChatFinishReason.ToolCalls, first.FinishReason);
        var toolCall = Assert.Single(first.ToolCalls);
        Assert.Equal("call_w1", toolCall.Id);
        Assert.Equal("get_weather", toolCall.FunctionName);
        using (var arguments = JsonDocument.Parse(toolCall.FunctionArguments))
        {
            Assert.Equal("Paris", arguments.RootElement.GetProperty("city").GetString());
        }

        messages.Add(new Sdk.AssistantChatMessage(first));
        messages.Add(new Sdk.ToolChatMessage(toolCall.Id, "sunny, 21C"));
        Sdk.ChatCompletion second = await client.CompleteChatAsync(messages, options, Ct);

        Assert.Equal(Sdk.ChatFinishReason.Stop, second.FinishReason);
        Assert.Equal("Paris: sunny, 21C", second.Content[0].Text);
        Assert.Equal(34, second.Usage.TotalTokenCount);

        // What the IChatClient saw on the second turn: the tool declaration, its own call, and the result.
        var turn2 = chat.Calls.ToArray()[1];
        var declaration = Assert.IsType<AI.AIFunctionDeclaration>(Assert.Single(turn2.Options!.Tools!), exactMatch: false);
        Assert.Equal("get_weather", declaration.Name);
        Assert.Equal("Gets the weather for a city", declaration.Description);
        Assert.Equal("city", declaration.JsonSchema.GetProperty("required")[0].GetString());
        Assert.Equal([AI.ChatRole.System, AI.ChatRole.User, AI.ChatRole.Assistant, AI.ChatRole.Tool], turn2.Messages.Select(m => m.Role));
        var call = Assert.IsType<AI.FunctionCallContent>(Assert.Single(turn2.Messages[2].Contents));
        Assert.Equal(("call_w1", "get_weather", "Paris"), (call.CallId, call.Name, ((JsonElement)call.Arguments!["city"]!).GetString()));
        var result = Assert.IsType<AI.FunctionResultContent>(Assert.Single(turn2.Messages[3].Contents));
        Assert.Equal(("call_w1", "sunny, 21C"), (result.CallId, result.Result));
    }

    [Fact]
    public async Task The_sdk_streams_a_tool_call_from_the_chat_client()
    {
        var chat = new FakeChatClient
        {
            OnStream = call => FakeChatClient.Updates(
                call.Token,
                new AI.ChatResponseUpdate(AI.ChatRole.Assistant, [new AI.FunctionCallContent("call_s1", "get_weather", new Dictionary<string, object?> { ["city"] = "Rome" })]),
                new AI.ChatResponseUpdate { FinishReason = AI.ChatFinishReason.ToolCalls }),
        };
        await using var host = await BridgeHost.StartAsync(chat);
        var client = CreateClient(host).GetChatClient("mea/gpt-tools");
        var options = new Sdk.ChatCompletionOptions { Tools = { Sdk.ChatTool.CreateFunctionTool("get_weather", "Weather") } };

        var name = string.Empty;
        var id = string.Empty;
        var arguments = new System.Text.StringBuilder();
        Sdk.ChatFinishReason? finish = null;
        await foreach (var update in client.CompleteChatStreamingAsync([new Sdk.UserChatMessage("Rome?")], options, Ct))
        {
            foreach (var part in update.ToolCallUpdates)
            {
                id = part.ToolCallId ?? id;
                name = part.FunctionName ?? name;
                arguments.Append(part.FunctionArgumentsUpdate?.ToString());
            }

            finish = update.FinishReason ?? finish;
        }

        Assert.Equal(("call_s1", "get_weather"), (id, name));
        Assert.Equal("""{"city":"Rome"}""", arguments.ToString());
        Assert.Equal(Sdk.ChatFinishReason.ToolCalls, finish);
    }

    private static OpenAIClient CreateClient(GatewayHost host) =>
        new(new ApiKeyCredential("sk-unused"), new OpenAIClientOptions
        {
            Endpoint = new Uri(host.Server.BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(host.Server.CreateClient()),
            RetryPolicy = new ClientRetryPolicy(0),
        });
}
