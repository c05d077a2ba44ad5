using System.Text.Json;
using Bifrost.Middleware.Tokenization;

namespace Bifrost.Middleware.Tests.Tokenization;

/// <summary>
/// The quick input estimate the governance layer reserves (<see cref="TokenEstimate"/>): held against the exact local count
/// (o200k_base, gpt-4o) over classes of prompts, and its fixed rules (framing, images, data parts, tools).
/// </summary>
public sealed class TokenEstimateTests
{
    private const string Prose = "Bifrost routes each request to the provider named in its model, retries on the errors a retry can fix, falls back to the next model when a provider is down, and records what every call cost so a platform team can see who spends what.";

    private const string Code = "public static async Task<int> Main(string[] args) { var client = new HttpClient(); var body = await client.GetStringAsync(args[0]); Console.WriteLine(body.Length); return 0; }";

    private const string Json = """{"city":"Paris","units":"metric","days":[1,2,3],"include":{"hourly":true,"alerts":false},"lang":"fr"}""";

    private const string Cjk = "日本語のテキストは一文字あたりのトークン数が英語と大きく違うので、見積もりがどれだけずれるかを確かめます。中文文本也是如此。";

    private const string Emoji = "Ship it 🚀🚀 — tests green ✅, docs updated 📚, coffee ☕☕☕ consumed, bugs 🐛 squashed.";

    // Measured: prose 74 for 66, long prose 2,355 for 2,055, code 59 for 57, JSON 41 for 47, CJK 62 for 64, emoji 41 for
    // 47; the documented bound is ±30 %. Digits are the known weak class (o200k_base cuts them in groups of three): 390
    // for 914, documented as under-estimated by up to 2.5×.
    public static TheoryData<string, string, double, double> Prompts => new()
    {
        { "prose", Prose, 0.7, 1.3 },
        { "code", Code, 0.7, 1.3 },
        { "json", Json, 0.7, 1.3 },
        { "cjk", Cjk, 0.7, 1.3 },
        { "emoji", Emoji, 0.7, 1.3 },
        { "long prose", string.Join(' ', Enumerable.Repeat(Prose, 40)), 0.7, 1.3 },
        { "numbers", string.Join(",", Enumerable.Range(1_000, 300)), 0.4, 1.0 },
    };

    [Theory]
    [MemberData(nameof(Prompts))]
    public void Each_class_of_text_lands_within_its_documented_bound_of_the_exact_count(string kind, string text, double low, double high)
    {
        List<ChatCompletionMessage> messages = [ChatCompletionMessage.FromText("system", "You are terse."), ChatCompletionMessage.FromText("user", text)];
        var exact = TokenCounter.Shared.CountChat("gpt-4o", messages, null).Tokens;
        var estimate = TokenEstimate.Chat(messages, null);

        Assert.True(estimate >= exact * low && estimate <= exact * high, $"{kind}: estimate {estimate}, exact {exact}, bound [{low}, {high}]");
    }

    [Fact]
    public void Nothing_to_count_is_the_reply_priming_alone_and_each_message_adds_its_framing()
    {
        Assert.Equal(3, TokenEstimate.Chat(null, null));
        Assert.Equal(3, TokenEstimate.Chat([], []));

        // Three framing tokens per message; "user" (4 bytes) and "abcd" (4 bytes): 8 bytes → 2 tokens.
        Assert.Equal(3 + 3 + 2, TokenEstimate.Chat([ChatCompletionMessage.FromText("user", "abcd")], null));
        var message = ChatCompletionMessage.FromText("user", "abcd");
        Assert.Equal(3 + ((3 + 2) * 2), TokenEstimate.Chat([message, null!, message], null));
    }

    [Fact]
    public void Images_count_a_flat_figure_by_detail_and_their_data_is_never_read_as_text()
    {
        var dataUrl = "data:image/png;base64," + new string('A', 400_000);
        ChatCompletionMessage Image(string? detail) => ChatCompletionMessage.User(new ChatCompletionContent(
            [new ChatContentPart { Type = "image_url", ImageUrl = new ChatImageUrl { Url = dataUrl, Detail = detail } }]));

        var framing = TokenEstimate.Chat([ChatCompletionMessage.User(new ChatCompletionContent(Array.Empty<ChatContentPart>()))], null);
        Assert.Equal(framing + 85, TokenEstimate.Chat([Image("low")], null));
        Assert.Equal(framing + 765, TokenEstimate.Chat([Image("high")], null));
        Assert.Equal(framing + 765, TokenEstimate.Chat([Image(null)], null));
    }

    [Fact]
    public void Audio_and_file_parts_are_not_counted_by_their_base64_size()
    {
        var audio = new ChatContentPart
        {
            Type = "input_audio",
            AdditionalProperties = new Dictionary<string, JsonElement>
            {
                ["input_audio"] = JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["data"] = new string('Q', 1_000_000), ["format"] = "wav" }),
            },
        };
        var withAudio = TokenEstimate.Chat([ChatCompletionMessage.User(new ChatCompletionContent([new ChatContentPart { Type = "text", Text = "transcribe" }, audio]))], null);
        var textOnly = TokenEstimate.Chat([ChatCompletionMessage.User(new ChatCompletionContent([new ChatContentPart { Type = "text", Text = "transcribe" }]))], null);

        Assert.Equal(textOnly, withAudio);
    }

    [Fact]
    public void Tools_and_tool_calls_count_their_names_descriptions_schemas_and_arguments()
    {
        var schema = JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string","description":"The city to look up"},"days":{"type":"integer"}},"required":["city"]}""").RootElement;
        List<ChatCompletionTool> tools = [new ChatCompletionTool { Type = "function", Function = new ChatFunctionDefinition { Name = "get_weather", Description = "Gets the forecast for a city.", Parameters = schema } }];
        List<ChatCompletionMessage> messages =
        [
            ChatCompletionMessage.FromText("user", "Weather in Paris?"),
            new ChatCompletionMessage { Role = "assistant", ToolCalls = [new ChatCompletionToolCall { Id = "call_1", Type = "function", Function = new ChatCompletionFunctionCall { Name = "get_weather", Arguments = Json } }] },
        ];

        var without = TokenEstimate.Chat(messages, null);
        var with = TokenEstimate.Chat(messages, tools);
        var schemaBytes = System.Text.Encoding.UTF8.GetByteCount(schema.GetRawText());

        Assert.True(with - without >= 8 + (schemaBytes / 4), $"tools added {with - without}");
        var exact = TokenCounter.Shared.CountChat("gpt-4o", messages, tools).Tokens;
        Assert.True(with >= exact / 2.0 && with <= exact * 2.0, $"estimate {with}, exact {exact}");
        Assert.True(TokenEstimate.Chat(messages, null) > TokenEstimate.Chat([messages[0]], null) + (Json.Length / 4));
    }

    [Fact]
    public void Embeddings_and_prompts_count_a_quarter_of_their_bytes_or_the_token_ids_given()
    {
        Assert.Equal(0, TokenEstimate.Text(null));
        Assert.Equal(3, TokenEstimate.Text("abcdefghij")); // 10 bytes
        Assert.Equal(16, TokenEstimate.Text(new[] { new string('x', 40), new string('y', 24) }));
        Assert.Equal(5, TokenEstimate.Text(new TextInput([[1, 2, 3], [4, 5]])));
        var exact = TokenCounter.Shared.CountText(Prose, TokenEncoding.O200kBase);
        var estimate = TokenEstimate.Text(Prose);
        Assert.True(estimate >= exact * 0.7 && estimate <= exact * 1.3, $"estimate {estimate}, exact {exact}");
    }
}
