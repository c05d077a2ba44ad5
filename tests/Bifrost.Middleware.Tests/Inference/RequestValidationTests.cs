using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Providers.Local;
using Bifrost.Middleware.Serialization;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary>
/// One bad request parameter: the JSON members it puts into the route's valid base body (replacing members of the
/// same name), the <c>param</c> the 400 must name, and its code.
/// </summary>
public sealed record BadParameter(string Route, string Members, string Param, string Code = "invalid_value");

/// <summary>The table of bad parameters of every inference route (issue 11, findings 1 and 3), shared by the path tests.</summary>
public static class BadParameters
{
    public const string Chat = "chat/completions";
    public const string Completions = "completions";
    public const string Embeddings = "embeddings";
    public const string Responses = "responses";
    public const string InputTokens = "responses/input_tokens";

    public const string Model = "counted/m";

    private const string Json = "invalid_json";
    private const string Missing = "missing_required_parameter";
    private const string Type = "invalid_type";

    /// <summary>The valid base body of each route.</summary>
    public static string BaseMembers(string route) => route switch
    {
        Chat => $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"hi"}]}""",
        Completions => $$"""{"model":"{{Model}}","prompt":"hi"}""",
        Embeddings => $$"""{"model":"{{Model}}","input":"hi"}""",
        _ => $$"""{"model":"{{Model}}","input":"hi"}""",
    };

    public static readonly BadParameter[] All =
    [
        .. Common(Chat),
        new(Chat, J("'n':0"), "n"),
        new(Chat, J("'n':-5"), "n"),
        new(Chat, J("'n':129"), "n"),
        new(Chat, J("'n':10000000"), "n"),
        new(Chat, J("'n':2147483647"), "n"),
        new(Chat, J("'n':1e20"), "n", Json),
        new(Chat, J("'n':1.5"), "n", Json),
        new(Chat, J("'max_tokens':0"), "max_tokens"),
        new(Chat, J("'max_tokens':-1"), "max_tokens"),
        new(Chat, J("'max_completion_tokens':-1"), "max_completion_tokens"),
        new(Chat, J("'max_completion_tokens':2147483648"), "max_completion_tokens", Json),
        new(Chat, J("'logprobs':true,'top_logprobs':21"), "top_logprobs"),
        new(Chat, J("'logprobs':true,'top_logprobs':2147483647"), "top_logprobs"),
        new(Chat, J("'logprobs':true,'top_logprobs':-1"), "top_logprobs"),
        new(Chat, J("'top_logprobs':3"), "top_logprobs"),
        new(Chat, J("'presence_penalty':2.5"), "presence_penalty"),
        new(Chat, J("'presence_penalty':-1e309"), "presence_penalty"),
        new(Chat, J("'frequency_penalty':-2.01"), "frequency_penalty"),
        new(Chat, J("'logit_bias':{'50256':101}"), "logit_bias.50256"),
        new(Chat, J("'logit_bias':{'1':1e309}"), "logit_bias.1"),
        new(Chat, J("'logit_bias':{'x':1}"), "logit_bias"),
        new(Chat, J("'logit_bias':{'-3':1}"), "logit_bias"),
        new(Chat, J("'seed':1e30"), "seed", Json),
        new(Chat, J("'seed':9223372036854775808"), "seed", Json),
        new(Chat, J("'stop':['a','b','c','d','e']"), "stop"),
        new(Chat, J("'stop':['a',null]"), "stop", Json),
        new(Chat, J("'messages':null"), "messages", Missing),
        new(Chat, J("'messages':[]"), "messages", Missing),
        new(Chat, J("'messages':[{'role':'user','content':'x'},null]"), "messages[1]"),
        new(Chat, J("'messages':[{'role':'user','content':[{'type':'text','text':'a'},null]}]"), "messages[0].content[1]"),
        new(Chat, J("'messages':[{'role':'assistant','content':'a','tool_calls':[null]},{'role':'user','content':'x'}]"), "messages[0].tool_calls[0]"),
        new(Chat, J("'messages':[{'role':'assistant','content':'a','tool_calls':[{'id':'c','type':'function'}]},{'role':'user','content':'x'}]"), "messages[0].tool_calls[0].function", Missing),
        new(Chat, J("'messages':[{'role':'user','content':42}]"), "messages[0].content", Json),
        new(Chat, J("'tools':[null]"), "tools[0]"),
        new(Chat, J("'tools':[{'type':'function'}]"), "tools[0].function.name", Missing),
        new(Chat, J("'tools':[{'type':'function','function':{'name':'f'}},null]"), "tools[1]"),

        .. Common(Completions),
        new(Completions, J("'n':0"), "n"),
        new(Completions, J("'n':2147483647"), "n"),
        new(Completions, J("'n':1.5"), "n", Json),
        new(Completions, J("'best_of':21"), "best_of"),
        new(Completions, J("'best_of':0"), "best_of"),
        new(Completions, J("'best_of':1.5"), "best_of"),
        new(Completions, J("'best_of':'x'"), "best_of", Type),
        new(Completions, J("'n':3,'best_of':2"), "best_of"),
        new(Completions, J("'logprobs':6"), "logprobs"),
        new(Completions, J("'logprobs':-1"), "logprobs"),
        new(Completions, J("'max_tokens':-1"), "max_tokens"),
        new(Completions, J("'presence_penalty':1e309"), "presence_penalty"),
        new(Completions, J("'frequency_penalty':'x'"), "frequency_penalty", Type),
        new(Completions, J("'logit_bias':{'a':1}"), "logit_bias"),
        new(Completions, J("'logit_bias':{'1':-101}"), "logit_bias.1"),
        new(Completions, J("'logit_bias':[1]"), "logit_bias", Type),
        new(Completions, J("'stop':['a','b','c','d','e']"), "stop"),
        new(Completions, J("'prompt':null"), "prompt", Missing),
        new(Completions, J("'prompt':[]"), "prompt"),
        new(Completions, J("'prompt':[-1]"), "prompt"),
        new(Completions, J("'prompt':[[1],[-2]]"), "prompt[1]"),
        new(Completions, J("'prompt':[[1],[]]"), "prompt[1]"),
        new(Completions, J("'prompt':[null]"), "prompt", Json),
        new(Completions, J("'prompt':['a',1]"), "prompt", Json),
        new(Completions, J("'prompt':[[1,'a']]"), "prompt", Json),
        new(Completions, J("'prompt':[1.5]"), "prompt", Json),
        new(Completions, J("'prompt':[[[1]]]"), "prompt", Json),
        new(Completions, J("'prompt':[2147483648]"), "prompt", Json),
        new(Completions, "\"prompt\":[" + string.Join(',', Enumerable.Repeat("\"a\"", 2049)) + "]", "prompt"),

        new(Embeddings, J("'model':''"), "model", Missing),
        new(Embeddings, J("'dimensions':0"), "dimensions"),
        new(Embeddings, J("'dimensions':-1"), "dimensions"),
        new(Embeddings, J("'dimensions':16385"), "dimensions"),
        new(Embeddings, J("'dimensions':2147483647"), "dimensions"),
        new(Embeddings, J("'dimensions':1e20"), "dimensions", Json),
        new(Embeddings, J("'input':''"), "input"),
        new(Embeddings, J("'input':null"), "input", Missing),
        new(Embeddings, J("'input':[]"), "input", Missing),
        new(Embeddings, J("'input':['a','']"), "input[1]"),
        new(Embeddings, J("'input':[-1]"), "input"),
        new(Embeddings, J("'input':[[1],[-2]]"), "input[1]"),
        new(Embeddings, J("'input':[[]]"), "input[0]"),
        new(Embeddings, J("'input':[null]"), "input", Json),
        new(Embeddings, J("'input':[{'a':1}]"), "input", Json),
        new(Embeddings, J("'input':[1,'a']"), "input", Json),
        new(Embeddings, "\"input\":[" + string.Join(',', Enumerable.Repeat("\"a\"", 2049)) + "]", "input"),
        new(Embeddings, "\"input\":[[" + string.Join(',', Enumerable.Repeat("7", 150_001)) + "],[" + string.Join(',', Enumerable.Repeat("7", 150_000)) + "]]", "input"),
        new(Embeddings, J("'encoding_format':'x'"), "encoding_format"),
        new(Embeddings, "\"dimensions\":3072,\"input\":[" + string.Join(',', Enumerable.Repeat("\"a\"", 20_000)) + "]", "input"),
        new(Embeddings, "\"fallbacks\":[" + string.Join(',', Enumerable.Repeat($"\"{Model}\"", 17)) + "]", "fallbacks"),

        .. ResponsesShaped(Responses),
        new(Responses, J("'tool_choice':{'type':5,'name':'f'}"), "tool_choice", "unsupported_parameter"),
        new(Responses, J("'tool_choice':{'type':'function','name':[1]}"), "tool_choice", "unsupported_parameter"),
        .. ResponsesShaped(InputTokens),
    ];

    /// <summary>Every (route, path) a bad parameter is sent on.</summary>
    public static IEnumerable<TheoryDataRow<string, int>> Rows(params string[] paths)
    {
        for (var i = 0; i < All.Length; i++)
        {
            foreach (var path in paths)
            {
                if (Applies(All[i], path))
                {
                    yield return new TheoryDataRow<string, int>(path, i) { TestDisplayName = $"{path} {All[i].Route} {Shorten(All[i].Members)} → {All[i].Param}" };
                }
            }
        }
    }

    public static bool Applies(BadParameter bad, string path) => path switch
    {
        "stream" => bad.Route is Chat or Completions or Responses,
        "async" or "envelope" => bad.Route != InputTokens,
        "direct" => bad.Code != Json, // a direct caller has no JSON to get wrong
        "direct-stream" => bad.Code != Json && bad.Route is Chat or Completions or Responses,
        _ => true,
    };

    /// <summary>The route's base body with the bad members put in (replacing base members of the same name).</summary>
    public static string Body(BadParameter bad, bool stream = false)
    {
        using var overrides = JsonDocument.Parse("{" + bad.Members + "}");
        using var members = JsonDocument.Parse(BaseMembers(bad.Route));
        var names = overrides.RootElement.EnumerateObject().Select(static p => p.Name).ToHashSet(StringComparer.Ordinal);
        var parts = members.RootElement.EnumerateObject().Where(p => !names.Contains(p.Name)).Select(static p => JsonSerializer.Serialize(p.Name) + ":" + p.Value.GetRawText()).ToList();
        parts.Add(bad.Members);
        if (stream)
        {
            parts.Add("\"stream\":true");
        }

        return "{" + string.Join(',', parts) + "}";
    }

    private static IEnumerable<BadParameter> Common(string route) =>
    [
        new(route, J("'model':''"), "model", Missing),
        new(route, J("'model':null"), "model", Missing),
        new(route, J("'temperature':-0.1"), "temperature"),
        new(route, J("'temperature':2.5"), "temperature"),
        new(route, J("'temperature':1e309"), "temperature"),
        new(route, J("'temperature':-1e309"), "temperature"),
        new(route, J("'top_p':1.5"), "top_p"),
        new(route, J("'top_p':1e309"), "top_p"),
        new(route, J("'fallbacks':[null]"), "fallbacks[0]", Missing),
        new(route, "\"fallbacks\":[" + string.Join(',', Enumerable.Repeat($"\"{Model}\"", 17)) + "]", "fallbacks"),
    ];

    private static IEnumerable<BadParameter> ResponsesShaped(string route) =>
    [
        .. Common(route),
        new(route, J("'max_output_tokens':15"), "max_output_tokens"),
        new(route, J("'max_output_tokens':-1"), "max_output_tokens"),
        new(route, J("'max_output_tokens':2147483648"), "max_output_tokens", Json),
        new(route, J("'top_logprobs':21"), "top_logprobs"),
        new(route, J("'top_logprobs':-1"), "top_logprobs"),
        new(route, J("'top_logprobs':1.5"), "top_logprobs"),
        new(route, J("'top_logprobs':'5'"), "top_logprobs", Type),
        new(route, J("'max_tool_calls':-1"), "max_tool_calls"),
        new(route, J("'max_tool_calls':1e20"), "max_tool_calls"),
        new(route, J("'input':null"), "input", Missing),
        new(route, J("'input':[null]"), "input[0]"),
        new(route, J("'input':[{'role':'user','content':'a'},null]"), "input[1]"),
        new(route, J("'input':[{'role':'user','content':[{'type':'input_text','text':'a'},null]}]"), "input[0].content[1]"),
        new(route, J("'input':5"), "input", Json),
        new(route, J("'tools':[null]"), "tools[0]"),
        new(route, J("'tools':[{'type':'function'}]"), "tools[0].name", Missing),
    ];

    /// <summary>JSON members written with single quotes (no escaping in the table).</summary>
    private static string J(string members) => members.Replace('\'', '"');

    private static string Shorten(string text) => text.Length <= 60 ? text : text[..60] + "…";
}

/// <summary>A host whose provider <c>counted</c> wraps the local provider and counts every call that reaches it.</summary>
public sealed class CountedProviderHost : IAsyncLifetime
{
    private CountingAdapter? _provider;

    public GatewayHost Host { get; private set; } = null!;

    internal CountingAdapter Provider => _provider!;

    public async ValueTask InitializeAsync() =>
        Host = await GatewayHost.StartAsync(
            options =>
            {
                options.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
                options.Providers["counted"] = new ProviderOptions { MaxRetries = 0 };
            },
            bifrost => bifrost.AddProvider("counted", sp => _provider = new CountingAdapter(sp.GetRequiredService<LocalProviderAdapter>())));

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}

/// <summary>
/// Every bad parameter of every inference route is a 400 <c>invalid_request_error</c> naming the parameter, on every
/// path (sync, SSE, x-bf-async submit, v1/async envelope submit, direct IBifrostClient), before any provider call and
/// before any job is stored. Batch lines: <see cref="RequestValidationBatchTests"/>.
/// </summary>
public sealed class RequestValidationTests(CountedProviderHost fixture) : IClassFixture<CountedProviderHost>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static IEnumerable<TheoryDataRow<string, int>> HttpRows() => BadParameters.Rows("sync", "stream", "async", "envelope");

    public static IEnumerable<TheoryDataRow<string, int>> DirectRows() => BadParameters.Rows("direct", "direct-stream");

    [Theory]
    [MemberData(nameof(HttpRows))]
    public async Task A_bad_parameter_is_a_400_naming_it_before_anything_is_sent_or_stored(string path, int index)
    {
        var bad = BadParameters.All[index];
        var host = fixture.Host;
        var store = host.Services.GetRequiredService<IJobStore>();
        var calls = fixture.Provider.Calls;

        var url = path == "envelope" ? "/openai/v1/async/" + bad.Route : "/openai/v1/" + bad.Route;
        (string, string)[] headers = path == "async" ? [("x-bf-async", "true")] : [];
        using var response = await host.SendAsync(HttpMethod.Post, url, BadParameters.Body(bad, stream: path == "stream"), headers);

        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path} {bad.Route} {bad.Members}: {(int)response.StatusCode} {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var json = JsonDocument.Parse(text).RootElement;
        InferenceKit.AssertError(json, 400, bad.Code, bad.Param);
        Assert.Equal("invalid_request_error", json.GetProperty("error").GetProperty("type").GetString());
        var extra = json.GetProperty("extra_fields");
        Assert.False(string.IsNullOrEmpty(extra.GetProperty("request_type").GetString()));
        if (extra.TryGetProperty("model_requested", out var model))
        {
            Assert.False(string.IsNullOrEmpty(model.GetString()), "an empty extra field is omitted");
        }
        else
        {
            Assert.True(bad.Param == "model" || bad.Code == "invalid_json", "the model is reported when the body was read: " + extra);
        }

        Assert.Equal(calls, fixture.Provider.Calls);
        Assert.Equal(0, await store.CountUnfinishedAsync(Ct));
    }

    [Theory]
    [MemberData(nameof(DirectRows))]
    public async Task A_bad_parameter_from_a_direct_caller_is_the_same_400(string path, int index)
    {
        var bad = BadParameters.All[index];
        var client = fixture.Host.Services.GetRequiredService<IBifrostClient>();
        var calls = fixture.Provider.Calls;
        var body = BadParameters.Body(bad);
        var context = BifrostJson.Context;
        var stream = path == "direct-stream";

        Func<Task> call = bad.Route switch
        {
            BadParameters.Chat when stream => () => DrainAsync(client.ChatCompletionStreamAsync(JsonSerializer.Deserialize(body, context.ChatCompletionRequest)!, Ct)),
            BadParameters.Chat => () => client.ChatCompletionAsync(JsonSerializer.Deserialize(body, context.ChatCompletionRequest)!, Ct),
            BadParameters.Completions when stream => () => DrainAsync(client.TextCompletionStreamAsync(JsonSerializer.Deserialize(body, context.TextCompletionRequest)!, Ct)),
            BadParameters.Completions => () => client.TextCompletionAsync(JsonSerializer.Deserialize(body, context.TextCompletionRequest)!, Ct),
            BadParameters.Embeddings => () => client.EmbeddingsAsync(JsonSerializer.Deserialize(body, context.EmbeddingRequest)!, Ct),
            BadParameters.Responses when stream => () => DrainAsync(client.ResponsesStreamAsync(JsonSerializer.Deserialize(body, context.ResponsesRequest)!, Ct)),
            BadParameters.Responses => () => client.ResponsesAsync(JsonSerializer.Deserialize(body, context.ResponsesRequest)!, Ct),
            _ => () => client.CountInputTokensAsync(JsonSerializer.Deserialize(body, context.ResponsesRequest)!, Ct),
        };

        var error = await Assert.ThrowsAsync<BifrostException>(call);
        Assert.Equal(400, error.StatusCode);
        Assert.True(error.Error.IsBifrostError);
        Assert.Equal(bad.Code, error.Error.Error.Code);
        Assert.Equal(bad.Param, error.Error.Error.Param);
        Assert.NotNull(error.Error.ExtraFields?.RequestType);
        Assert.Equal(calls, fixture.Provider.Calls);
    }

    [Fact]
    public async Task The_direct_client_refuses_null_elements_it_was_handed()
    {
        var client = fixture.Host.Services.GetRequiredService<IBifrostClient>();
        var calls = fixture.Provider.Calls;

        var chat = new ChatCompletionRequest { Model = BadParameters.Model, Messages = [ChatCompletionMessage.FromText("user", "x")], Stop = ["a", null!] };
        Assert.Equal("stop[1]", (await Assert.ThrowsAsync<BifrostException>(() => client.ChatCompletionAsync(chat, Ct))).Error.Error.Param);

        var parts = new ChatCompletionMessage { Role = "user", Content = new ChatCompletionContent(new List<ChatContentPart> { null! }) };
        chat = new ChatCompletionRequest { Model = BadParameters.Model, Messages = [parts] };
        Assert.Equal("messages[0].content[0]", (await Assert.ThrowsAsync<BifrostException>(() => client.ChatCompletionAsync(chat, Ct))).Error.Error.Param);

        var embeddings = new EmbeddingRequest { Model = BadParameters.Model, Input = new TextInput(new List<string> { "a", null! }) };
        Assert.Equal("input[1]", (await Assert.ThrowsAsync<BifrostException>(() => client.EmbeddingsAsync(embeddings, Ct))).Error.Error.Param);

        embeddings = new EmbeddingRequest { Model = BadParameters.Model, Input = new TextInput(new List<int[]> { new[] { 1 }, null! }) };
        Assert.Equal("input[1]", (await Assert.ThrowsAsync<BifrostException>(() => client.EmbeddingsAsync(embeddings, Ct))).Error.Error.Param);

        var text = new TextCompletionRequest { Model = BadParameters.Model, Prompt = new TextInput(new List<string> { null! }) };
        Assert.Equal("prompt[0]", (await Assert.ThrowsAsync<BifrostException>(() => client.TextCompletionAsync(text, Ct))).Error.Error.Param);

        var nan = new ResponsesRequest { Model = BadParameters.Model, Input = new ResponsesInput("x"), Temperature = double.NaN };
        Assert.Equal("temperature", (await Assert.ThrowsAsync<BifrostException>(() => client.ResponsesAsync(nan, Ct))).Error.Error.Param);
        Assert.Equal(calls, fixture.Provider.Calls);
    }

    [Fact]
    public void Empty_extra_fields_are_omitted_on_the_wire()
    {
        var extra = new BifrostExtraFields { RequestType = "chat_completion", Provider = string.Empty, ModelRequested = string.Empty, ModelDeployment = string.Empty, CountMethod = string.Empty };

        var json = JsonSerializer.Serialize(extra, BifrostJson.Context.BifrostExtraFields);

        Assert.Equal("""{"request_type":"chat_completion"}""", json);
        Assert.Null(extra.ModelRequested);
    }

    [Fact]
    public async Task Values_at_the_documented_bounds_are_accepted()
    {
        var host = fixture.Host;
        var chat = """{"model":"counted/m","messages":[{"role":"user","content":"hi"}],"n":128,"temperature":2,"top_p":0,"presence_penalty":-2,"frequency_penalty":2,"logprobs":true,"top_logprobs":20,"max_tokens":1,"max_completion_tokens":1,"logit_bias":{"50256":-100,"1":100},"seed":-9223372036854775808,"stop":["a","b","c","d"]}""";
        var completions = """{"model":"counted/m","prompt":[[0],[1,2]],"n":2,"best_of":20,"logprobs":5,"max_tokens":0,"temperature":0,"top_p":1,"presence_penalty":2,"frequency_penalty":-2,"logit_bias":{"7":100}}""";
        var embeddings = "{\"model\":\"counted/m\",\"dimensions\":1,\"input\":[" + string.Join(',', Enumerable.Repeat("\"a\"", 2048)) + "]}";
        var responses = """{"model":"counted/m","input":"hi","max_output_tokens":16,"temperature":0,"top_p":1}""";
        foreach (var (route, body) in new[] { ("chat/completions", chat), ("completions", completions), ("embeddings", embeddings), ("responses", responses), ("responses/input_tokens", responses) })
        {
            using var response = await host.SendAsync(HttpMethod.Post, "/openai/v1/" + route, body);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{route}: {(int)response.StatusCode} {text}");
        }

        using var tokens = await host.SendAsync(HttpMethod.Post, "/openai/v1/responses/input_tokens", """{"model":"counted/m","input":"hi","top_logprobs":20,"max_tool_calls":0}""");
        Assert.Equal(HttpStatusCode.OK, tokens.StatusCode);
    }

    private static async Task DrainAsync<T>(IAsyncEnumerable<T> items)
    {
        await foreach (var _ in items)
        {
        }
    }
}

/// <summary>The same table as batch lines: every line ends in the error file with the 400 naming the parameter; no provider call.</summary>
public sealed class RequestValidationBatchTests
{
    [Theory]
    [InlineData(BadParameters.Chat, "/v1/chat/completions")]
    [InlineData(BadParameters.Completions, "/v1/completions")]
    [InlineData(BadParameters.Embeddings, "/v1/embeddings")]
    [InlineData(BadParameters.Responses, "/v1/responses")]
    public async Task Bad_parameters_in_batch_lines_fail_those_lines_with_the_same_400(string route, string url)
    {
        CountingAdapter? provider = null;
        await using var host = await FileBatchHost.StartAsync(
            options => options.Providers["counted"] = new ProviderOptions { MaxRetries = 0 },
            bifrost => bifrost.AddProvider("counted", sp => provider = new CountingAdapter(sp.GetRequiredService<LocalProviderAdapter>())));

        // An empty model in a batch line takes the batch's default model, so those rows do not apply here.
        var cases = BadParameters.All.Select((bad, index) => (Bad: bad, Id: $"case-{index}")).Where(c => c.Bad.Route == route && c.Bad.Param != "model").ToList();
        var lines = cases.Select(c => $$"""{"custom_id":"{{c.Id}}","method":"POST","url":"{{url}}","body":""" + BadParameters.Body(c.Bad) + "}");
        var file = await host.UploadOkAsync(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
        using var create = await host.CreateBatchRawAsync($$"""{"input_file_id":"{{file.GetProperty("id").GetString()}}","endpoint":"{{url}}","completion_window":"24h"}""");
        var batch = await FileBatchHost.ExpectAsync(create, HttpStatusCode.OK);
        var ended = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);

        Assert.Equal("completed", ended.GetProperty("status").GetString());
        var (output, errors) = await host.ResultsAsync(ended);
        Assert.Empty(output);
        BatchLines.AssertExactlyOnce(cases.Select(c => c.Id), output, errors);
        foreach (var line in errors)
        {
            var bad = cases.Single(c => c.Id == BatchLines.CustomId(line)).Bad;
            if (bad.Code == "invalid_json")
            {
                continue; // the body does not read as the route's request: an error line without a parsed param
            }

            var response = line.GetProperty("response");
            Assert.Equal(400, response.GetProperty("status_code").GetInt32());
            var body = response.GetProperty("body");
            Assert.True(body.GetProperty("is_bifrost_error").GetBoolean(), line.ToString());
            Assert.Equal(bad.Param, body.GetProperty("error").GetProperty("param").GetString());
        }

        Assert.Equal(0, provider!.Calls);
    }
}

/// <summary>
/// What the local provider refuses (400 from the provider, <c>is_bifrost_error: false</c>): output that <c>n</c> multiplies
/// past its bound, more embedding components than it produces, and scripting values that are not numbers in their range
/// (NaN, 1e308 or a negative <c>local_retry_after</c> once overflowed a TimeSpan). Refused before the job is stored and
/// before any operation of the provider runs, on every path.
/// </summary>
public sealed class LocalProviderLimitsTests(CountedProviderHost fixture) : IClassFixture<CountedProviderHost>
{
    private static readonly string LongText = string.Concat(Enumerable.Repeat("word ", 2000)); // 10,000 characters

    public static readonly BadParameter[] Cases =
    [
        new(BadParameters.Chat, $$"""{"model":"counted/m","n":128,"messages":[{"role":"user","content":"{{LongText}}"}]}""", "n"),
        new(BadParameters.Chat, $$"""{"model":"counted/m","n":2,"messages":[{"role":"user","content":"x"}],"metadata":{"local_reply":"{{string.Concat(Enumerable.Repeat(LongText, 60))}}" } }""", "n"),
        new(BadParameters.Completions, $$"""{"model":"counted/m","n":128,"echo":true,"prompt":"{{LongText}}"}""", "n"),
        new(BadParameters.Completions, $$"""{"model":"counted/m","n":128,"prompt":["{{LongText}}","b"]}""", "n"),
        new(BadParameters.Completions, "{\"model\":\"counted/m\",\"n\":128,\"prompt\":[" + string.Join(',', Enumerable.Repeat("\"a\"", 2048)) + "]}", "n"),
        new(BadParameters.Embeddings, "{\"model\":\"counted/m\",\"dimensions\":3072,\"input\":[" + string.Join(',', Enumerable.Repeat("\"a\"", 2048)) + "]}", "input"),
        new(BadParameters.Embeddings, "{\"model\":\"counted/m\",\"input\":[" + string.Join(',', Enumerable.Repeat("[1]", 2048)) + "],\"dimensions\":1024}", "input"),
        new(BadParameters.Embeddings, """{"model":"counted/m","dimensions":3073,"input":"a"}""", "dimensions"),
        .. Script(BadParameters.Chat, "local_retry_after", "NaN"),
        .. Script(BadParameters.Chat, "local_retry_after", "1e308"),
        .. Script(BadParameters.Chat, "local_retry_after", "-1"),
        .. Script(BadParameters.Chat, "local_retry_after", "Infinity"),
        .. Script(BadParameters.Chat, "local_retry_after", "soon"),
        .. Script(BadParameters.Chat, "local_delay_ms", "-1"),
        .. Script(BadParameters.Chat, "local_delay_ms", "1.5"),
        .. Script(BadParameters.Chat, "local_delay_ms", "99999999999"),
        .. Script(BadParameters.Chat, "local_chunk_delay_ms", "-5"),
        .. Script(BadParameters.Chat, "local_fail_after_chunks", "-1"),
        .. Script(BadParameters.Chat, "local_status", "teapot"),
        .. Script(BadParameters.Completions, "local_retry_after", "1e308"),
        .. Script(BadParameters.Completions, "local_delay_ms", "x"),
        .. Script(BadParameters.Responses, "local_retry_after", "NaN"),
        .. Script(BadParameters.Responses, "local_chunk_delay_ms", "-1"),
    ];

    public static IEnumerable<TheoryDataRow<string, int>> Rows()
    {
        for (var i = 0; i < Cases.Length; i++)
        {
            foreach (var path in new[] { "sync", "stream", "async", "envelope", "direct" })
            {
                if (path != "stream" || Cases[i].Route != BadParameters.Embeddings)
                {
                    yield return new TheoryDataRow<string, int>(path, i) { TestDisplayName = $"{path} {Cases[i].Route} → {Cases[i].Param} #{i}" };
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public async Task The_local_provider_refuses_what_it_cannot_reasonably_produce_before_running_or_storing_it(string path, int index)
    {
        var bad = Cases[index];
        var host = fixture.Host;
        var store = host.Services.GetRequiredService<IJobStore>();
        var calls = fixture.Provider.Calls;
        var body = path == "stream" ? bad.Members[..^1] + ",\"stream\":true}" : bad.Members;

        if (path == "direct")
        {
            var client = host.Services.GetRequiredService<IBifrostClient>();
            var context = BifrostJson.Context;
            Func<Task> call = bad.Route switch
            {
                BadParameters.Chat => () => client.ChatCompletionAsync(JsonSerializer.Deserialize(body, context.ChatCompletionRequest)!, TestContext.Current.CancellationToken),
                BadParameters.Completions => () => client.TextCompletionAsync(JsonSerializer.Deserialize(body, context.TextCompletionRequest)!, TestContext.Current.CancellationToken),
                BadParameters.Embeddings => () => client.EmbeddingsAsync(JsonSerializer.Deserialize(body, context.EmbeddingRequest)!, TestContext.Current.CancellationToken),
                _ => () => client.ResponsesAsync(JsonSerializer.Deserialize(body, context.ResponsesRequest)!, TestContext.Current.CancellationToken),
            };
            var error = await Assert.ThrowsAsync<BifrostException>(call);
            Assert.Equal(400, error.StatusCode);
            Assert.Equal(bad.Param, error.Error.Error.Param);
            Assert.Equal("counted", error.Error.ExtraFields?.Provider);
        }
        else
        {
            var url = path == "envelope" ? "/openai/v1/async/" + bad.Route : "/openai/v1/" + bad.Route;
            (string, string)[] headers = path == "async" ? [("x-bf-async", "true")] : [];
            using var response = await host.SendAsync(HttpMethod.Post, url, body, headers);
            var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path} {bad.Param}: {(int)response.StatusCode} {text[..Math.Min(text.Length, 400)]}");
            var json = JsonDocument.Parse(text).RootElement;
            Assert.False(json.GetProperty("is_bifrost_error").GetBoolean(), "the provider refused it");
            Assert.Equal(400, json.GetProperty("status_code").GetInt32());
            Assert.Equal("invalid_value", json.GetProperty("error").GetProperty("code").GetString());
            Assert.Equal(bad.Param, json.GetProperty("error").GetProperty("param").GetString());
            Assert.Equal("counted", json.GetProperty("extra_fields").GetProperty("provider").GetString());
        }

        Assert.Equal(calls, fixture.Provider.Calls);
        Assert.Equal(0, await store.CountUnfinishedAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Within_its_bounds_the_local_provider_answers_n_choices_and_scripted_waits()
    {
        var host = fixture.Host;
        var chat = await host.PostOkAsync("/openai/v1/chat/completions", System.Text.Json.Nodes.JsonNode.Parse("""{"model":"counted/m","n":128,"messages":[{"role":"user","content":"hello there"}]}""")!);
        Assert.Equal(128, chat.GetProperty("choices").GetArrayLength());

        var embeddings = await host.PostOkAsync("/openai/v1/embeddings", System.Text.Json.Nodes.JsonNode.Parse("{\"model\":\"counted/m\",\"dimensions\":512,\"input\":[" + string.Join(',', Enumerable.Repeat("\"a\"", 2048)) + "]}")!);
        Assert.Equal(2048, embeddings.GetProperty("data").GetArrayLength());

        using var scripted = await host.SendAsync(HttpMethod.Post, "/openai/v1/chat/completions", """{"model":"counted/m","messages":[{"role":"user","content":"x"}],"metadata":{"local_status":"400","local_retry_after":"0.5","local_delay_ms":"0"}}""");
        var json = await InferenceKit.ReadAsync(scripted);
        Assert.Equal(400, (int)scripted.StatusCode);
        Assert.Equal("local_scripted_failure", json.GetProperty("error").GetProperty("code").GetString());
    }

    [Theory]
    [InlineData(BadParameters.Chat, "/v1/chat/completions")]
    [InlineData(BadParameters.Completions, "/v1/completions")]
    [InlineData(BadParameters.Embeddings, "/v1/embeddings")]
    [InlineData(BadParameters.Responses, "/v1/responses")]
    public async Task Batch_lines_the_local_provider_refuses_fail_with_the_same_400(string route, string url)
    {
        await using var host = await FileBatchHost.StartAsync();
        var cases = Cases.Select((bad, index) => (Bad: bad, Id: $"case-{index}")).Where(c => c.Bad.Route == route).ToList();
        var lines = cases.Select(c => $$"""{"custom_id":"{{c.Id}}","method":"POST","url":"{{url}}","body":""" + c.Bad.Members.Replace("counted/m", "local/echo", StringComparison.Ordinal) + "}");
        var file = await host.UploadOkAsync(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
        using var create = await host.CreateBatchRawAsync($$"""{"input_file_id":"{{file.GetProperty("id").GetString()}}","endpoint":"{{url}}","completion_window":"24h"}""");
        var batch = await FileBatchHost.ExpectAsync(create, HttpStatusCode.OK);
        var ended = await host.WaitForEndAsync(batch.GetProperty("id").GetString()!);

        var (output, errors) = await host.ResultsAsync(ended);
        Assert.Empty(output);
        BatchLines.AssertExactlyOnce(cases.Select(c => c.Id), output, errors);
        foreach (var line in errors)
        {
            var bad = cases.Single(c => c.Id == BatchLines.CustomId(line)).Bad;
            var response = line.GetProperty("response");
            Assert.Equal(400, response.GetProperty("status_code").GetInt32());
            Assert.Equal(bad.Param, response.GetProperty("body").GetProperty("error").GetProperty("param").GetString());
        }
    }

    private static IEnumerable<BadParameter> Script(string route, string key, string value)
    {
        var meta = "\"metadata\":{\"" + key + "\":\"" + value + "\"}";
        var body = route == BadParameters.Chat
            ? $$"""{"model":"counted/m","messages":[{"role":"user","content":"x"}],{{meta}}}"""
            : route == BadParameters.Completions
                ? $$"""{"model":"counted/m","prompt":"x",{{meta}}}"""
                : $$"""{"model":"counted/m","input":"x",{{meta}}}""";
        return [new(route, body, "metadata." + key)];
    }
}
