using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Providers.Anthropic;
using Bifrost.Middleware.Tests.Infrastructure;
using static Bifrost.Middleware.Tests.Infrastructure.NativeBatchSteps;

namespace Bifrost.Middleware.Tests.Anthropic;

/// <summary>Batches for an Anthropic provider with NativeBatches run on the Message Batches API and come back in OpenAI's batch format.</summary>
public sealed class AnthropicNativeBatchTests : AnthropicTestBase
{
    private readonly string _files = Path.Combine(Path.GetTempPath(), "bifrost-anthropic-" + Guid.NewGuid().ToString("N"));

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (Directory.Exists(_files))
        {
            Directory.Delete(_files, recursive: true);
        }
    }

    [Fact]
    public async Task Batch_runs_on_the_Message_Batches_API_and_results_come_back_as_OpenAI_batch_output()
    {
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("c0", "anthropic/claude-haiku-4-5", "hello"), ("line 1 / é", null, "world"), ("c-2", "anthropic/claude-haiku-4-5", "please fail")));
        var batchId = await CreateBatchAsync(host, fileId, "anthropic/claude-haiku-4-5");

        var done = await WaitForStatusAsync(host, batchId, "completed");

        var counts = done.GetProperty("request_counts");
        Assert.Equal(3, counts.GetProperty("total").GetInt32());
        Assert.Equal(2, counts.GetProperty("succeeded").GetInt32());
        Assert.Equal(1, counts.GetProperty("failed").GetInt32());
        Assert.Empty(Upstream.MessageRequests);

        // Upstream: one Message Batch, each line's body translated to Messages params with the bare model.
        var upstream = Assert.Single(Upstream.Batches.Values);
        Assert.Equal(3, upstream.Requests.Count);
        Assert.Equal("c0", upstream.Requests[0]["custom_id"]!.GetValue<string>());
        Assert.Matches("^bfx_[A-Za-z0-9_-]+$", upstream.Requests[1]["custom_id"]!.GetValue<string>());
        var parameters = upstream.Requests[0]["params"]!;
        Assert.Equal("claude-haiku-4-5", parameters["model"]!.GetValue<string>());
        Assert.Equal(4096, parameters["max_tokens"]!.GetValue<int>());
        Assert.Equal("hello", parameters["messages"]![0]!["content"]![0]!["text"]!.GetValue<string>());
        Assert.Null(parameters["stream"]);

        // Our output file: OpenAI batch output lines with chat.completion bodies, original custom ids.
        var output = await ReadLinesAsync(host, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["c0", "line 1 / é"], output.Select(l => l.GetProperty("custom_id").GetString()).Order());
        var first = output.Single(l => l.GetProperty("custom_id").GetString() == "c0");
        Assert.Equal(200, first.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal("msg_batch_c0", first.GetProperty("response").GetProperty("request_id").GetString());
        var completion = first.GetProperty("response").GetProperty("body");
        Assert.Equal("chat.completion", completion.GetProperty("object").GetString());
        Assert.Equal("batch: hello", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(13, completion.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("error").ValueKind);

        // The errored line is in the error file with the provider's status and error.
        var errors = await ReadLinesAsync(host, done.GetProperty("error_file_id").GetString()!);
        var failed = Assert.Single(errors);
        Assert.Equal("c-2", failed.GetProperty("custom_id").GetString());
        Assert.Equal(400, failed.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal("scripted batch error", failed.GetProperty("response").GetProperty("body").GetProperty("error").GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", failed.GetProperty("response").GetProperty("body").GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Cancel_is_forwarded_and_cancelled_requests_land_in_the_error_file()
    {
        Upstream.CompleteAfterPolls = int.MaxValue;
        await using var host = await StartBatchHostAsync();
        var fileId = await UploadAsync(host, Lines(("a", "anthropic/m", "one"), ("b", "anthropic/m", "two")));
        var batchId = await CreateBatchAsync(host, fileId, null);
        await WaitForStatusAsync(host, batchId, "in_progress", until: () => !Upstream.Batches.IsEmpty);

        using var cancel = await host.Client.PostAsync($"/openai/v1/batches/{batchId}/cancel", null, Ct);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var cancelled = await WaitForStatusAsync(host, batchId, "cancelled");

        Assert.True(Assert.Single(Upstream.Batches.Values).CancelRequested);
        Assert.Contains(Upstream.Requests, r => r.Method == "POST" && r.Path.EndsWith("/cancel", StringComparison.Ordinal));
        Assert.Equal(2, cancelled.GetProperty("request_counts").GetProperty("canceled").GetInt32());
        var errors = await ReadLinesAsync(host, cancelled.GetProperty("error_file_id").GetString()!);
        Assert.Equal(2, errors.Count);
        Assert.All(errors, e => Assert.Equal("batch_cancelled", e.GetProperty("error").GetProperty("code").GetString()));
    }

    [Theory]
    [InlineData("simple-id_1")]
    [InlineData("has spaces and / slashes")]
    [InlineData("émoji 🎉")]
    [InlineData("bfx_looks_encoded")]
    public void Custom_ids_round_trip_through_Anthropics_alphabet(string customId)
    {
        var encoded = AnthropicAdapter.EncodeCustomId(customId, 1);

        Assert.Matches("^[A-Za-z0-9_-]{1,64}$", encoded);
        Assert.Equal(customId, AnthropicAdapter.DecodeCustomId(encoded));
    }

    [Fact]
    public void A_custom_id_too_long_to_encode_is_a_clear_400()
    {
        var error = Assert.Throws<BifrostException>(() => AnthropicAdapter.EncodeCustomId(new string('x', 40) + " " + new string('y', 40), 7));

        Assert.Equal(400, error.StatusCode);
        Assert.Contains("line 7", error.Message, StringComparison.Ordinal);
    }

    private Task<GatewayHost> StartBatchHostAsync() => StartHostAsync(
        p => p.NativeBatches = true,
        o =>
        {
            o.Files.Directory = _files;
            o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
            o.Batches.NativePollInterval = TimeSpan.FromMilliseconds(30);
            o.Batches.ProgressInterval = TimeSpan.FromMilliseconds(20);
        });

    private static string Lines(params (string CustomId, string? Model, string Text)[] lines) => string.Join('\n', lines.Select(line =>
    {
        var body = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = line.Text }) };
        if (line.Model is not null)
        {
            body["model"] = line.Model;
        }

        return new JsonObject { ["custom_id"] = line.CustomId, ["method"] = "POST", ["url"] = "/v1/chat/completions", ["body"] = body }.ToJsonString();
    })) + "\n";
}
