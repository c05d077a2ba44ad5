using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using Bifrost.Middleware.Packaging.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Bedrock;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bifrost.Middleware.Bedrock.Tests;

/// <summary>
/// Batches of a <c>bedrock</c> provider with <c>NativeBatches</c> and <c>BedrockBatch</c> run on Bedrock batch inference:
/// the gateway, SigV4 signing (<c>UseBedrockSigV4</c>), a fake Bedrock control plane and a fake S3 that recompute every
/// signature from the secret (service <c>bedrock</c>: path encoded again; service <c>s3</c>: path as sent, payload hash from
/// <c>x-amz-content-sha256</c>) and refuse a wrong one.
/// </summary>
public sealed class BedrockNativeBatchTests : IAsyncLifetime
{
    private const string AccessKey = "AKIAIOSFODNN7EXAMPLE";
    private const string Secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY";
    private const string Model = "anthropic.claude-3-5-sonnet-20240620-v1:0";
    private const string RoleArn = "arn:aws:iam::123456789012:role/BedrockBatchRole";
    private const string Nova = "amazon.nova-lite-v1:0";
    private const string Llama = "meta.llama3-1-70b-instruct-v1:0";
    private const string Titan = "amazon.titan-embed-text-v2:0";
    private const string ChatUrl = "/v1/chat/completions";
    private const string EmbeddingsUrl = "/v1/embeddings";

    private readonly string _files = Path.Combine(Path.GetTempPath(), "bifrost-bedrock-batch-" + Guid.NewGuid().ToString("N"));
    private readonly ConcurrentQueue<(int EventId, string Message)> _logs = new();
    private FakeBedrockBatchUpstream _batch = null!;
    private FakeBedrockUpstream _runtime = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _batch = await FakeBedrockBatchUpstream.StartAsync();
        _batch.Verify = (service, r) => SigV4Check.Verify(service, r.Method, r.RawTarget, r.Headers, r.Body, Secret, "eu-west-3");
        _runtime = await FakeBedrockUpstream.StartAsync();
        _runtime.Verify = r => SigV4Check.Verify("bedrock", r.Method, r.RawTarget, r.Headers, r.BodyBytes, Secret, "eu-west-3");
    }

    public async ValueTask DisposeAsync()
    {
        await _batch.DisposeAsync();
        await _runtime.DisposeAsync();
        if (Directory.Exists(_files))
        {
            Directory.Delete(_files, recursive: true);
        }
    }

    [Fact]
    public async Task Batch_runs_on_Bedrock_batch_inference_through_S3_and_results_come_back_as_OpenAI_batch_output()
    {
        await using var app = await StartAsync(b => b.MinimumRecords = 3);
        using var client = app.GetTestClient();
        var fileId = await UploadAsync(client, Lines(("c0", "hello"), ("line 1 / é", "world"), ("c-2", "please fail")));
        var batchId = await CreateBatchAsync(client, fileId);

        var done = await WaitForStatusAsync(client, batchId, "completed");

        var counts = done.GetProperty("request_counts");
        Assert.Equal(3, counts.GetProperty("total").GetInt32());
        Assert.Equal(2, counts.GetProperty("succeeded").GetInt32());
        Assert.Equal(1, counts.GetProperty("failed").GetInt32());
        Assert.Empty(_runtime.Requests);

        // The input went to S3 (PutObject, signed for s3) as one record per line: the custom id and Claude's InvokeModel body.
        var job = Assert.Single(_batch.Jobs.Values);
        var jobName = job.Body["jobName"]!.GetValue<string>();
        Assert.Matches("^bifrost-[0-9a-f]{32}$", jobName);
        var put = Assert.Single(_batch.Requests, r => r.Method == "PUT");
        Assert.Equal($"/my-bucket/batches/in/{jobName}/input.jsonl", put.RawTarget);
        Assert.Equal("s3", put.Service);
        Assert.Contains("/eu-west-3/s3/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=", put.Headers["authorization"], StringComparison.Ordinal);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(put.Body)), put.Headers["x-amz-content-sha256"]);
        var records = Encoding.UTF8.GetString(put.Body).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(["c0", "line 1 / é", "c-2"], records.Select(r => r["recordId"]!.GetValue<string>()));
        Assert.Equal(["modelInput", "recordId"], records[0].Select(p => p.Key).Order());
        var modelInput = records[0]["modelInput"]!.AsObject();
        Assert.Equal("bedrock-2023-05-31", modelInput["anthropic_version"]!.GetValue<string>());
        Assert.Equal(4096, modelInput["max_tokens"]!.GetValue<int>());
        Assert.Null(modelInput["model"]);
        Assert.Null(modelInput["stream"]);
        Assert.Equal("user", modelInput["messages"]![0]!["role"]!.GetValue<string>());
        Assert.Contains("hello", modelInput["messages"]![0]!["content"]!.ToJsonString(), StringComparison.Ordinal);

        // The job: CreateModelInvocationJob on the control plane, signed for bedrock.
        var create = Assert.Single(_batch.Requests, r => r.Method == "POST" && r.RawTarget == "/model-invocation-job");
        Assert.Contains("/eu-west-3/bedrock/aws4_request", create.Headers["authorization"], StringComparison.Ordinal);
        var expected = $$$"""
            {"jobName":"{{{jobName}}}","roleArn":"{{{RoleArn}}}","clientRequestToken":"{{{jobName}}}","modelId":"{{{Model}}}",
             "inputDataConfig":{"s3InputDataConfig":{"s3Uri":"s3://my-bucket/batches/in/{{{jobName}}}/input.jsonl","s3InputFormat":"JSONL"}},
             "outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"s3://my-bucket/batches/in/{{{jobName}}}/output/"}},
             "timeoutDurationInHours":24}
            """;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), create.Json), create.Json.ToJsonString());

        // Polled by its ARN (one path segment), then the output object read back from S3.
        Assert.Contains(_batch.Requests, r => r.Method == "GET" && r.RawTarget == "/model-invocation-job/arn%3Aaws%3Abedrock%3Aeu-west-3%3A123456789012%3Amodel-invocation-job%2Fjob000000001");
        var gets = _batch.Requests.Where(r => r.Method == "GET" && r.Service == "s3").ToList();
        Assert.Equal(2, gets.Count); // the output file, then the error file
        Assert.All(gets, g => Assert.Equal($"/my-bucket/batches/in/{jobName}/output/job000000001/input.jsonl.out", g.RawTarget));
        Assert.Contains(_logs, l => l.EventId == 1300 && l.Message == $"Provider 'aws' created Bedrock batch inference job {job.Arn} for model '{Model}'.");

        // Our output file: OpenAI batch output lines with chat.completion bodies, original custom ids.
        var output = await ReadLinesAsync(client, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["c0", "line 1 / é"], output.Select(l => l.GetProperty("custom_id").GetString()).Order());
        var first = output.Single(l => l.GetProperty("custom_id").GetString() == "c0");
        Assert.Equal(200, first.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal("msg_2_0", first.GetProperty("response").GetProperty("request_id").GetString());
        var completion = first.GetProperty("response").GetProperty("body");
        Assert.Equal("chat.completion", completion.GetProperty("object").GetString());
        Assert.Equal("claude-3-5-sonnet-20240620", completion.GetProperty("model").GetString());
        Assert.Equal("batch: hello", completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", completion.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(10, completion.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(13, completion.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal("batch: world", output.Single(l => l.GetProperty("custom_id").GetString() == "line 1 / é").GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        // The failed record is in the error file with Bedrock's errorCode as the status.
        var failed = Assert.Single(await ReadLinesAsync(client, done.GetProperty("error_file_id").GetString()!));
        Assert.Equal("c-2", failed.GetProperty("custom_id").GetString());
        Assert.Equal(400, failed.GetProperty("response").GetProperty("status_code").GetInt32());
        var error = failed.GetProperty("response").GetProperty("body").GetProperty("error");
        Assert.Equal("scripted record error", error.GetProperty("message").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.DoesNotContain(_logs, l => l.Message.Contains(Secret, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_Nova_batch_runs_as_messages_v1_records_and_comes_back_as_chat_completions_with_usage()
    {
        await using var app = await StartAsync();
        using var client = app.GetTestClient();
        var lines = BodyLines(
            ChatUrl,
            ("n0", ChatBody(Nova, [Message("system", "Be brief."), Message("user", "hello")], b => (b["max_tokens"], b["temperature"], b["top_p"], b["stop"]) = (50, 0.25, 0.5, new JsonArray("END")))),
            ("n1", ChatBody(Nova, [Message("user", "hi"), Message("assistant", "hello!"), new JsonObject { ["role"] = "user", ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "too long" }) }])),
            ("n2", ChatBody(Nova, [Message("user", "please fail")])));

        var done = await WaitForStatusAsync(client, await CreateBatchAsync(client, await UploadAsync(client, lines)), "completed");

        Assert.Equal((3, 2, 1), Counts(done));
        Assert.Empty(_runtime.Requests);
        Assert.Equal(Nova, Assert.Single(_batch.Jobs.Values).Body["modelId"]!.GetValue<string>());
        var records = PutRecords();
        Assert.Equal(["n0", "n1", "n2"], records.Select(r => r["recordId"]!.GetValue<string>()));
        AssertJson("""
            {"schemaVersion":"messages-v1","system":[{"text":"Be brief."}],"messages":[{"role":"user","content":[{"text":"hello"}]}],
             "inferenceConfig":{"maxTokens":50,"temperature":0.25,"topP":0.5,"stopSequences":["END"]}}
            """, records[0]["modelInput"]);
        AssertJson("""
            {"schemaVersion":"messages-v1","messages":[{"role":"user","content":[{"text":"hi"}]},{"role":"assistant","content":[{"text":"hello!"}]},{"role":"user","content":[{"text":"too long"}]}]}
            """, records[1]["modelInput"]);

        var output = await ReadLinesAsync(client, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["n0", "n1"], output.Select(l => l.GetProperty("custom_id").GetString()).Order());
        var first = Body(output, "n0");
        Assert.Equal("chat.completion", first.GetProperty("object").GetString());
        Assert.StartsWith("chatcmpl-", first.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal(Nova, first.GetProperty("model").GetString());
        Assert.Equal("nova: hello", first.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", first.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal((7, 2, 9), Usage(first));
        var second = Body(output, "n1");
        Assert.Equal("nova: too long", second.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("length", second.GetProperty("choices")[0].GetProperty("finish_reason").GetString());

        var failed = Assert.Single(await ReadLinesAsync(client, done.GetProperty("error_file_id").GetString()!));
        Assert.Equal("n2", failed.GetProperty("custom_id").GetString());
        Assert.Equal(400, failed.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal("scripted record error", failed.GetProperty("response").GetProperty("body").GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_Llama_batch_runs_as_prompts_in_the_Llama_3_chat_template_and_comes_back_as_chat_completions_with_usage()
    {
        await using var app = await StartAsync();
        using var client = app.GetTestClient();
        var lines = BodyLines(
            ChatUrl,
            ("l0", ChatBody(Llama, [Message("system", "Be brief."), Message("user", "hello")], b => (b["max_completion_tokens"], b["temperature"]) = (64, 0.5))),
            ("l1", ChatBody(Llama, [Message("user", "hi"), Message("assistant", "hello!"), Message("user", "too long")], b => b["top_p"] = 0.75)),
            ("l2", ChatBody(Llama, [Message("user", "please fail")])));

        var done = await WaitForStatusAsync(client, await CreateBatchAsync(client, await UploadAsync(client, lines)), "completed");

        Assert.Equal((3, 2, 1), Counts(done));
        Assert.Empty(_runtime.Requests);
        Assert.Equal(Llama, Assert.Single(_batch.Jobs.Values).Body["modelId"]!.GetValue<string>());
        var records = PutRecords();
        AssertJson("""
            {"prompt":"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
             "temperature":0.5,"max_gen_len":64}
            """, records[0]["modelInput"]);
        AssertJson("""
            {"prompt":"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nhello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\ntoo long<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
             "top_p":0.75}
            """, records[1]["modelInput"]);

        var output = await ReadLinesAsync(client, done.GetProperty("output_file_id").GetString()!);
        var first = Body(output, "l0");
        Assert.Equal(Llama, first.GetProperty("model").GetString());
        Assert.Equal("llama: hello", first.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", first.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal((11, 4, 15), Usage(first));
        Assert.Equal("length", Body(output, "l1").GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal("l2", Assert.Single(await ReadLinesAsync(client, done.GetProperty("error_file_id").GetString()!)).GetProperty("custom_id").GetString());
    }

    [Fact]
    public async Task A_Titan_embeddings_batch_runs_one_text_per_record_and_comes_back_as_embedding_lists_with_usage()
    {
        await using var app = await StartAsync();
        using var client = app.GetTestClient();
        var lines = BodyLines(
            EmbeddingsUrl,
            ("e0", new JsonObject { ["model"] = "aws/" + Titan, ["input"] = "alpha", ["dimensions"] = 256 }),
            ("e1", new JsonObject { ["model"] = "aws/" + Titan, ["input"] = new JsonArray("beta!"), ["encoding_format"] = "float" }),
            ("e2", new JsonObject { ["model"] = "aws/" + Titan, ["input"] = "please fail" }));

        var done = await WaitForStatusAsync(client, await CreateBatchAsync(client, await UploadAsync(client, lines), EmbeddingsUrl), "completed");

        Assert.Equal((3, 2, 1), Counts(done));
        Assert.Equal(EmbeddingsUrl, done.GetProperty("endpoint").GetString());
        Assert.Empty(_runtime.Requests);
        Assert.Equal(Titan, Assert.Single(_batch.Jobs.Values).Body["modelId"]!.GetValue<string>());
        var records = PutRecords();
        AssertJson("""{"inputText":"alpha","dimensions":256}""", records[0]["modelInput"]);
        AssertJson("""{"inputText":"beta!"}""", records[1]["modelInput"]);

        var output = await ReadLinesAsync(client, done.GetProperty("output_file_id").GetString()!);
        var first = Body(output, "e0");
        Assert.Equal("list", first.GetProperty("object").GetString());
        Assert.Equal(Titan, first.GetProperty("model").GetString());
        var vector = Assert.Single(first.GetProperty("data").EnumerateArray());
        Assert.Equal(0, vector.GetProperty("index").GetInt32());
        Assert.Equal(256, vector.GetProperty("embedding").GetArrayLength());
        Assert.Equal(5f, vector.GetProperty("embedding")[0].GetSingle());
        Assert.Equal(5.1f, vector.GetProperty("embedding")[1].GetSingle());
        Assert.Equal(5, first.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(5, first.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal(3, Body(output, "e1").GetProperty("data")[0].GetProperty("embedding").GetArrayLength());
        Assert.Equal("e2", Assert.Single(await ReadLinesAsync(client, done.GetProperty("error_file_id").GetString()!)).GetProperty("custom_id").GetString());
    }

    [Theory]
    [InlineData(Nova, """{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}""", "'tools', which Amazon Nova batch records cannot carry")]
    [InlineData(Nova, """{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}""", "a part that is not text (an image, audio or a file), which Amazon Nova batch records cannot carry")]
    [InlineData(Nova, """{"messages":[{"role":"user","content":"a"},{"role":"system","content":"b"}]}""", "a system message after the conversation started, which Amazon Nova batch records cannot carry")]
    [InlineData(Llama, """{"stop":["x"]}""", "'stop', which Meta Llama 3 batch records cannot carry")]
    [InlineData(Llama, """{"n":2}""", "'n' > 1, which Meta Llama 3 batch records cannot carry")]
    [InlineData(Llama, """{"response_format":{"type":"json_object"}}""", "'response_format' json_object, which Meta Llama 3 batch records cannot carry")]
    [InlineData(Titan, """{"input":["one","two"]}""", "an 'input' that is not one text (a Titan record embeds one text; token ids are not text), which Titan Text Embeddings V2 batch records cannot carry")]
    [InlineData(Titan, """{"dimensions":300}""", "'dimensions' 300 (Titan Text Embeddings V2 has 256, 512 or 1024), which Titan Text Embeddings V2 batch records cannot carry")]
    public async Task A_line_its_family_cannot_write_exactly_runs_the_whole_batch_line_by_line_through_the_gateway(string model, string extra, string reason)
    {
        await using var app = await StartAsync();
        using var client = app.GetTestClient();
        var embeddings = model == Titan;
        JsonObject Line(string text) => embeddings
            ? new JsonObject { ["model"] = "aws/" + model, ["input"] = text }
            : ChatBody(model, [Message("user", text)]);
        var refused = Line("two");
        foreach (var (name, value) in JsonNode.Parse(extra)!.AsObject())
        {
            refused[name] = value!.DeepClone();
        }

        var batchId = await CreateBatchAsync(client, await UploadAsync(client, BodyLines(embeddings ? EmbeddingsUrl : ChatUrl, ("a", Line("one")), ("b", refused))), embeddings ? EmbeddingsUrl : ChatUrl);

        var done = await WaitForStatusAsync(client, batchId, "completed");

        Assert.Empty(_batch.Requests);
        var counts = done.GetProperty("request_counts");
        Assert.Equal(2, counts.GetProperty("total").GetInt32());
        Assert.Equal(2, counts.GetProperty("succeeded").GetInt32() + counts.GetProperty("failed").GetInt32());
        var operation = embeddings ? "/invoke" : "/converse";
        Assert.Contains(_runtime.Requests, r => r.RawTarget == "/model/" + Uri.EscapeDataString(model) + operation);
        Assert.Contains(_logs, l => l.EventId == 1301 && l.Message == $"A batch for provider 'aws' runs line by line through the gateway, not on Bedrock batch inference: line 2 (custom_id 'b') has {reason}.");
    }

    [Fact]
    public async Task Cancel_stops_the_job_and_the_batch_ends_cancelled_with_the_records_counted_canceled()
    {
        _batch.CompleteAfterPolls = int.MaxValue;
        await using var app = await StartAsync();
        using var client = app.GetTestClient();
        var batchId = await CreateBatchAsync(client, await UploadAsync(client, Lines(("a", "one"), ("b", "two"))));
        await WaitForStatusAsync(client, batchId, "in_progress", until: () => !_batch.Jobs.IsEmpty);

        using var cancel = await client.PostAsync($"/openai/v1/batches/{batchId}/cancel", null, Ct);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var cancelled = await WaitForStatusAsync(client, batchId, "cancelled");

        var job = Assert.Single(_batch.Jobs.Values);
        Assert.True(job.StopRequested);
        Assert.Equal("Stopped", job.Status);
        var stop = Assert.Single(_batch.Requests, r => r.RawTarget.EndsWith("/stop", StringComparison.Ordinal));
        Assert.Equal("POST", stop.Method);
        Assert.Equal("/model-invocation-job/arn%3Aaws%3Abedrock%3Aeu-west-3%3A123456789012%3Amodel-invocation-job%2Fjob000000001/stop", stop.RawTarget);
        Assert.Equal(2, cancelled.GetProperty("request_counts").GetProperty("canceled").GetInt32());
        Assert.Equal(0, cancelled.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        Assert.Equal(JsonValueKind.Null, cancelled.GetProperty("output_file_id").ValueKind);

        // The records the stopped job never ran are read back from the input object and listed as cancelled.
        var notRun = await ReadLinesAsync(client, cancelled.GetProperty("error_file_id").GetString()!);
        Assert.Equal(["a", "b"], notRun.Select(l => l.GetProperty("custom_id").GetString()));
        Assert.All(notRun, l => Assert.Equal("batch_cancelled", l.GetProperty("error").GetProperty("code").GetString()));
        Assert.Contains(_batch.Requests, r => r.Method == "GET" && r.Service == "s3" && r.RawTarget.EndsWith("/input.jsonl", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_host_restarted_mid_job_polls_the_same_job_instead_of_creating_another()
    {
        var store = new Bifrost.Middleware.Jobs.InMemoryJobStore(TimeProvider.System);
        _batch.CompleteAfterPolls = int.MaxValue;
        string batchId;
        await using (var first = await StartAsync(services: s => { s.AddSingleton<Bifrost.Middleware.Jobs.IJobStore>(store); s.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromMilliseconds(100)); }, maxAttempts: 3))
        {
            using var client = first.GetTestClient();
            batchId = await CreateBatchAsync(client, await UploadAsync(client, Lines(("a", "one"), ("b", "two"))));
            await WaitForStatusAsync(client, batchId, "in_progress", until: () => _batch.Jobs.Values.Any(j => j.Polls >= 2));
            await first.StopAsync(Ct);
        }

        var polls = Assert.Single(_batch.Jobs.Values).Polls;
        _batch.CompleteAfterPolls = polls + 1;
        await using var second = await StartAsync(services: s => s.AddSingleton<Bifrost.Middleware.Jobs.IJobStore>(store), maxAttempts: 3);
        using var client2 = second.GetTestClient();

        var done = await WaitForStatusAsync(client2, batchId, "completed");

        Assert.Single(_batch.Jobs);
        Assert.Single(_batch.Requests, r => r.Method == "PUT");
        Assert.Single(_batch.Requests, r => r.Method == "POST" && r.RawTarget == "/model-invocation-job");
        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        var output = await ReadLinesAsync(client2, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["a", "b"], output.Select(l => l.GetProperty("custom_id").GetString()).Order());
    }

    [Fact]
    public async Task A_job_Bedrock_fails_fails_the_batch_with_its_message()
    {
        _batch.FailJobWith = "The role does not have permission to read the input.";
        await using var app = await StartAsync();
        using var client = app.GetTestClient();
        var batchId = await CreateBatchAsync(client, await UploadAsync(client, Lines(("a", "one"), ("b", "two"))));

        var failed = await WaitForStatusAsync(client, batchId, "failed");

        var error = failed.GetProperty("errors").GetProperty("data")[0];
        Assert.Equal("batch_failed", error.GetProperty("code").GetString());
        Assert.Equal("The role does not have permission to read the input.", error.GetProperty("message").GetString());
        Assert.Equal(2, failed.GetProperty("request_counts").GetProperty("failed").GetInt32());
        Assert.Equal(JsonValueKind.Null, failed.GetProperty("output_file_id").ValueKind);
    }

    [Fact]
    public async Task A_partially_completed_job_completes_with_the_records_it_ran_and_the_rest_counted_failed()
    {
        _batch.PartialRecords = 1;
        await using var app = await StartAsync();
        using var client = app.GetTestClient();
        var batchId = await CreateBatchAsync(client, await UploadAsync(client, Lines(("a", "one"), ("b", "two"), ("c", "three"))));

        var done = await WaitForStatusAsync(client, batchId, "completed");

        Assert.Equal("PartiallyCompleted", Assert.Single(_batch.Jobs.Values).Status);
        var counts = done.GetProperty("request_counts");
        Assert.Equal(3, counts.GetProperty("total").GetInt32());
        Assert.Equal(1, counts.GetProperty("succeeded").GetInt32());
        Assert.Equal(2, counts.GetProperty("failed").GetInt32());
        var line = Assert.Single(await ReadLinesAsync(client, done.GetProperty("output_file_id").GetString()!));
        Assert.Equal("a", line.GetProperty("custom_id").GetString());
        Assert.Equal("batch: one", line.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        // The records the job never ran are listed in the error file, so every custom id has its line.
        var notRun = await ReadLinesAsync(client, done.GetProperty("error_file_id").GetString()!);
        Assert.Equal(["b", "c"], notRun.Select(l => l.GetProperty("custom_id").GetString()));
        Assert.All(notRun, l => Assert.Equal("batch_not_processed", l.GetProperty("error").GetProperty("code").GetString()));
        Assert.All(notRun, l => Assert.Equal(JsonValueKind.Null, l.GetProperty("response").ValueKind));
    }

    [Fact]
    public async Task A_create_Bedrock_refuses_fails_the_batch_with_its_message_after_the_upload()
    {
        _batch.CreateFailure = (400, "The provided model doesn't support batch inference.");
        await using var app = await StartAsync();
        using var client = app.GetTestClient();
        var batchId = await CreateBatchAsync(client, await UploadAsync(client, Lines(("a", "one"))));

        var failed = await WaitForStatusAsync(client, batchId, "failed");

        Assert.Contains("The provided model doesn't support batch inference.", failed.GetProperty("errors").GetProperty("data")[0].GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Single(_batch.Objects);
        Assert.Empty(_batch.Jobs);
    }

    [Fact]
    public async Task A_wrong_secret_is_refused_by_S3_and_the_batch_fails_without_the_secret()
    {
        const string wrong = "not-the-right-secret-0123456789";
        await using var app = await StartAsync(signing: b => b.UseBedrockSigV4("aws", o => (o.AccessKeyId, o.SecretAccessKey) = (AccessKey, wrong)));
        using var client = app.GetTestClient();
        var batchId = await CreateBatchAsync(client, await UploadAsync(client, Lines(("a", "one"))));

        var failed = await WaitForStatusAsync(client, batchId, "failed");

        var message = failed.GetProperty("errors").GetProperty("data")[0].GetProperty("message").GetString();
        Assert.Contains("S3 answered 403 (SignatureDoesNotMatch)", message, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, failed.GetRawText(), StringComparison.Ordinal);
        Assert.Empty(_batch.Objects);
        Assert.Empty(_batch.Jobs);
        Assert.DoesNotContain(_logs, l => l.Message.Contains(wrong, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(Model, 100, "the batch has 2 lines, fewer than the 100 a Bedrock batch inference job needs (BedrockBatch:MinimumRecords)")]
    [InlineData("cohere.command-r-v1:0", 1, "model 'cohere.command-r-v1:0' is of no family whose InvokeModel body the gateway writes for batch inference (Claude, Amazon Nova, Meta Llama 3, Titan Text Embeddings V2)")]
    public async Task A_batch_Bedrock_batch_inference_cannot_take_runs_line_by_line_through_Converse(string model, int minimum, string reason)
    {
        await using var app = await StartAsync(b => b.MinimumRecords = minimum);
        using var client = app.GetTestClient();
        var batchId = await CreateBatchAsync(client, await UploadAsync(client, Lines(("a", "one", model), ("b", "two", model))));

        var done = await WaitForStatusAsync(client, batchId, "completed");

        Assert.Equal(2, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        Assert.Empty(_batch.Requests);
        Assert.Equal(2, _runtime.ChatRequests.Count());
        Assert.All(_runtime.Requests, r => Assert.Equal("/model/" + Uri.EscapeDataString(model) + "/converse", r.RawTarget));
        Assert.Contains(_logs, l => l.EventId == 1301 && l.Message == $"A batch for provider 'aws' runs line by line through the gateway, not on Bedrock batch inference: {reason}.");
    }

    [Fact]
    public async Task Without_SigV4_signing_a_batch_runs_line_by_line()
    {
        _runtime.Verify = null;
        await using var app = await StartAsync(b => b.MinimumRecords = 1, signing: _ => { }, key: "ABSKbedrock-api-key");
        using var client = app.GetTestClient();
        var batchId = await CreateBatchAsync(client, await UploadAsync(client, Lines(("a", "one"))));

        await WaitForStatusAsync(client, batchId, "completed");

        Assert.Empty(_batch.Requests);
        Assert.Single(_runtime.ChatRequests);
        Assert.Contains(_logs, l => l.EventId == 1301 && l.Message.Contains("not signed with SigV4 (UseBedrockSigV4): S3 does not take a Bedrock API key", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BedrockBatch_settings_are_validated_at_start()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => StartAsync(b =>
        {
            b.S3Uri = "https://my-bucket/in";
            b.RoleArn = "BedrockBatchRole";
            b.S3Endpoint = "not a url";
            b.MinimumRecords = 0;
        }));

        Assert.Contains(error.Failures, f => f.Contains("Bifrost:Providers:aws:BedrockBatch:S3Uri 'https://my-bucket/in' is not an S3 location", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("Bifrost:Providers:aws:BedrockBatch:RoleArn 'BedrockBatchRole' is not an IAM role ARN", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("Bifrost:Providers:aws:BedrockBatch:S3Endpoint 'not a url' is not an absolute http(s) URL", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("Bifrost:Providers:aws:BedrockBatch:MinimumRecords must be at least 1", StringComparison.Ordinal));

        var missing = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => StartAsync(b => (b.S3Uri, b.RoleArn) = (null, " ")));
        Assert.Contains(missing.Failures, f => f.Contains("Bifrost:Providers:aws:BedrockBatch:S3Uri is required", StringComparison.Ordinal));
        Assert.Contains(missing.Failures, f => f.Contains("Bifrost:Providers:aws:BedrockBatch:RoleArn is required", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_READMEs_batch_configuration_runs_a_batch_of_100_lines_on_Bedrock_batch_inference()
    {
        _batch.Verify = (service, r) => SigV4Check.Verify(service, r.Method, r.RawTarget, r.Headers, r.Body, Secret, "us-east-1");
        var json = ReadmeSnippets.Get(Repository.PathOf("README.md"), "bedrock-batch-appsettings");
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        builder.Configuration.AddInMemoryCollection(
        [
            new("Bifrost:Providers:bedrock:BaseUrl", _runtime.BaseUrl), // the fakes instead of the cloud
            new("Bifrost:Providers:bedrock:BedrockBatch:S3Endpoint", _batch.S3Url),
            new("Bifrost:Providers:bedrock:BedrockBatch:ControlPlaneUrl", _batch.ControlPlaneUrl),
            new("Bifrost:Files:Directory", _files),
            new("Bifrost:Jobs:PollInterval", "00:00:00.020"),
            new("Bifrost:Batches:NativePollInterval", "00:00:00.030"),
        ]);
        builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost")).UseBedrockSigV4("bedrock", o => (o.AccessKeyId, o.SecretAccessKey) = (AccessKey, Secret));
        await using var app = builder.Build();
        app.MapBifrost("/openai");
        await app.StartAsync(Ct);
        using var client = app.GetTestClient();
        var lines = string.Concat(Enumerable.Range(0, 100).Select(i => new JsonObject
        {
            ["custom_id"] = "req-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["method"] = "POST",
            ["url"] = "/v1/chat/completions",
            ["body"] = new JsonObject { ["model"] = "bedrock/" + Model, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "line " + i.ToString(System.Globalization.CultureInfo.InvariantCulture) }) },
        }.ToJsonString() + "\n"));

        var done = await WaitForStatusAsync(client, await CreateBatchAsync(client, await UploadAsync(client, lines)), "completed");

        Assert.Equal(100, done.GetProperty("request_counts").GetProperty("succeeded").GetInt32());
        var create = Assert.Single(_batch.Requests, r => r.Method == "POST" && r.RawTarget == "/model-invocation-job").Json;
        Assert.Equal("arn:aws:iam::123456789012:role/BedrockBatchInference", create["roleArn"]!.GetValue<string>());
        Assert.Matches("^s3://my-bedrock-batches/bifrost/bifrost-[0-9a-f]{32}/input.jsonl$", create["inputDataConfig"]!["s3InputDataConfig"]!["s3Uri"]!.GetValue<string>());
        Assert.Empty(_runtime.Requests);
        var output = await ReadLinesAsync(client, done.GetProperty("output_file_id").GetString()!);
        Assert.Equal(100, output.Count);
        Assert.Equal("batch: line 42", output.Single(l => l.GetProperty("custom_id").GetString() == "req-42").GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Theory]
    [InlineData("https://my-bucket.s3.eu-west-3.amazonaws.com/k", null, "s3")]
    [InlineData("https://s3.eu-west-3.amazonaws.com/my-bucket/k", null, "s3")]
    [InlineData("https://bedrock.eu-west-3.amazonaws.com/model-invocation-job", null, "bedrock")]
    [InlineData("https://bedrock-runtime.eu-west-3.amazonaws.com/model/m/converse", null, "bedrock")]
    [InlineData("http://127.0.0.1:5000/my-bucket/k", "s3", "s3")]
    [InlineData("http://127.0.0.1:5000/model-invocation-job", null, "bedrock")]
    public void The_signing_service_follows_the_request_option_then_the_host(string url, string? option, string expected)
    {
        var authenticator = new SigV4Authenticator(new BasicAWSCredentials(AccessKey, Secret), new BedrockSigV4Options(), TimeProvider.System, NullLogger<SigV4Authenticator>.Instance);
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (option is not null)
        {
            request.Options.Set(new HttpRequestOptionsKey<string>("Bifrost.SigV4Service"), option);
        }

        Assert.Equal(expected, authenticator.ServiceOf(request));
    }

    [Fact]
    public async Task For_S3_the_declared_payload_hash_is_signed_without_reading_the_body_and_the_path_is_not_encoded_again()
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData("abc"u8));
        using var request = new HttpRequestMessage(HttpMethod.Put, "https://my-bucket.s3.eu-west-3.amazonaws.com/a%20b/c%3Ad.jsonl") { Content = new StreamContent(new UnreadableStream()) };
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", hash);

        var canonical = await SigV4Signer.SignAsync(request, new ImmutableCredentials(AccessKey, Secret, null), "eu-west-3", "s3", new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero), Ct);

        var lines = canonical.Split('\n');
        Assert.Equal("PUT", lines[0]);
        Assert.Equal("/a%20b/c%3Ad.jsonl", lines[1]);
        Assert.Equal(hash, lines[^1]);
        Assert.Contains("x-amz-content-sha256:" + hash, lines);
        Assert.StartsWith("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/eu-west-3/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=", request.Headers.GetValues("Authorization").Single(), StringComparison.Ordinal);
    }

    private async Task<WebApplication> StartAsync(Action<BedrockBatchOptions>? batch = null, Action<IBifrostBuilder>? signing = null, string? key = null, Action<IServiceCollection>? services = null, int maxAttempts = 1)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(new ListLoggerProvider(_logs));
        var bifrost = builder.Services.AddBifrost(o =>
        {
            o.DefaultProvider = "aws";
            var options = new BedrockBatchOptions { S3Uri = "s3://my-bucket/batches/in/", RoleArn = RoleArn, S3Endpoint = _batch.S3Url, ControlPlaneUrl = _batch.ControlPlaneUrl, MinimumRecords = 1 };
            batch?.Invoke(options);
            o.Providers["aws"] = new ProviderOptions
            {
                Type = "bedrock",
                BaseUrl = _runtime.BaseUrl,
                Region = "eu-west-3",
                MaxRetries = 0,
                NativeBatches = true,
                BedrockBatch = options,
                Keys = key is null ? [] : [new ProviderKeyOptions { Value = key }],
            };
            o.Files.Directory = _files;
            o.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
            o.Jobs.MaxAttempts = maxAttempts;
            o.Batches.NativePollInterval = TimeSpan.FromMilliseconds(30);
            o.Batches.ProgressInterval = TimeSpan.FromMilliseconds(20);
        });
        (signing ?? (b => b.UseBedrockSigV4("aws", o => (o.AccessKeyId, o.SecretAccessKey) = (AccessKey, Secret))))(bifrost);
        services?.Invoke(builder.Services);
        var app = builder.Build();
        app.MapBifrost("/openai");
        await app.StartAsync(Ct);
        return app;
    }

    private static string Lines(params (string CustomId, string Text, string Model)[] lines) => string.Join('\n', lines.Select(line =>
        new JsonObject
        {
            ["custom_id"] = line.CustomId,
            ["method"] = "POST",
            ["url"] = "/v1/chat/completions",
            ["body"] = new JsonObject { ["model"] = "aws/" + line.Model, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = line.Text }) },
        }.ToJsonString())) + "\n";

    private static string Lines(params (string CustomId, string Text)[] lines) => Lines([.. lines.Select(l => (l.CustomId, l.Text, Model))]);

    private static JsonObject Message(string role, string text) => new() { ["role"] = role, ["content"] = text };

    private static JsonObject ChatBody(string model, JsonNode[] messages, Action<JsonObject>? configure = null)
    {
        var body = new JsonObject { ["model"] = "aws/" + model, ["messages"] = new JsonArray(messages) };
        configure?.Invoke(body);
        return body;
    }

    private static string BodyLines(string url, params (string CustomId, JsonObject Body)[] lines) => string.Join('\n', lines.Select(line =>
        new JsonObject { ["custom_id"] = line.CustomId, ["method"] = "POST", ["url"] = url, ["body"] = line.Body }.ToJsonString())) + "\n";

    private List<JsonObject> PutRecords()
    {
        var put = Assert.Single(_batch.Requests, r => r.Method == "PUT");
        return [.. Encoding.UTF8.GetString(put.Body).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject())];
    }

    private static (int Total, int Succeeded, int Failed) Counts(JsonElement batch)
    {
        var counts = batch.GetProperty("request_counts");
        return (counts.GetProperty("total").GetInt32(), counts.GetProperty("succeeded").GetInt32(), counts.GetProperty("failed").GetInt32());
    }

    private static JsonElement Body(List<JsonElement> output, string customId)
    {
        var line = output.Single(l => l.GetProperty("custom_id").GetString() == customId).GetProperty("response");
        Assert.Equal(200, line.GetProperty("status_code").GetInt32());
        return line.GetProperty("body");
    }

    private static (int Prompt, int Completion, int Total) Usage(JsonElement body)
    {
        var usage = body.GetProperty("usage");
        return (usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());
    }

    private static void AssertJson(string expected, JsonNode? actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"Expected {expected}, got {actual?.ToJsonString()}");

    private static async Task<string> UploadAsync(HttpClient client, string jsonl)
    {
        using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { new StringContent(jsonl), "file", "in.jsonl" } };
        using var response = await client.PostAsync("/openai/v1/files", form, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
    }

    private static async Task<string> CreateBatchAsync(HttpClient client, string fileId, string endpoint = ChatUrl)
    {
        using var response = await client.PostAsync("/openai/v1/batches", new StringContent($$"""{"input_file_id":"{{fileId}}","endpoint":"{{endpoint}}","completion_window":"24h"}""", Encoding.UTF8, "application/json"), Ct);
        var json = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        return json.GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> WaitForStatusAsync(HttpClient client, string batchId, string status, Func<bool>? until = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonElement last = default;
        while (DateTime.UtcNow < deadline)
        {
            last = await client.GetFromJsonAsync<JsonElement>($"/openai/v1/batches/{batchId}", Ct);
            if (last.GetProperty("status").GetString() == status && (until is null || until()))
            {
                return last;
            }

            await Task.Delay(20, Ct);
        }

        Assert.Fail($"Batch {batchId} did not reach '{status}'; last: {last}");
        return last;
    }

    private static async Task<List<JsonElement>> ReadLinesAsync(HttpClient client, string fileId)
    {
        var content = await client.GetStringAsync($"/openai/v1/files/{fileId}/content", Ct);
        return [.. content.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)];
    }

    private sealed class UnreadableStream : MemoryStream
    {
        public override bool CanSeek => false;

        public override int Read(byte[] buffer, int offset, int count) => throw new InvalidOperationException("The body was read.");

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => throw new InvalidOperationException("The body was read.");

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => throw new InvalidOperationException("The body was read.");
    }

    private sealed class ListLoggerProvider(ConcurrentQueue<(int, string)> logs) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ListLogger(logs);

        public void Dispose()
        {
        }

        private sealed class ListLogger(ConcurrentQueue<(int, string)> logs) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                logs.Enqueue((eventId.Id, formatter(state, exception) + (exception is null ? string.Empty : " " + exception)));
        }
    }
}

/// <summary>
/// The fakes' SigV4 check (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html): the signature
/// recomputed from the raw request and the secret — for <c>s3</c> the path as sent and the payload hash of
/// <c>x-amz-content-sha256</c> (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html), for other
/// services the path's segments encoded again and the body's SHA-256 — in the scope of the expected region and service.
/// </summary>
internal static class SigV4Check
{
    public static string? Verify(string service, string method, string rawTarget, IReadOnlyDictionary<string, string> headers, byte[] body, string secret, string region)
    {
        if (!headers.TryGetValue("authorization", out var authorization) || !authorization.StartsWith("AWS4-HMAC-SHA256 ", StringComparison.Ordinal))
        {
            return "Missing Authentication Token";
        }

        var fields = authorization["AWS4-HMAC-SHA256 ".Length..].Split(", ").Select(f => f.Split('=', 2)).ToDictionary(f => f[0], f => f[1]);
        var scope = fields["Credential"].Split('/');
        var date = headers["x-amz-date"];
        var signed = fields["SignedHeaders"].Split(';');
        if (scope.Length != 5 || scope[1] != date[..8] || scope[2] != region || scope[3] != service || !signed.Contains("host") || !signed.Contains("x-amz-date")
            || (service == "s3" && !signed.Contains("x-amz-content-sha256")) || rawTarget.Contains('?', StringComparison.Ordinal))
        {
            return $"Credential should be scoped to a valid region and service '{service}' with the required signed headers.";
        }

        var path = service == "s3" ? rawTarget : string.Join('/', rawTarget.Split('/').Select(Uri.EscapeDataString));
        var canonical = new StringBuilder().Append(method).Append('\n').Append(path).Append("\n\n");
        foreach (var name in signed)
        {
            canonical.Append(name).Append(':').Append(headers[name].Trim()).Append('\n');
        }

        var payload = service == "s3" ? headers["x-amz-content-sha256"] : Convert.ToHexStringLower(SHA256.HashData(body));
        canonical.Append('\n').Append(fields["SignedHeaders"]).Append('\n').Append(payload);
        var stringToSign = $"AWS4-HMAC-SHA256\n{date}\n{string.Join('/', scope[1..])}\n{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())))}";
        var key = Encoding.UTF8.GetBytes("AWS4" + secret);
        foreach (var part in scope[1..])
        {
            key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(part));
        }

        var expected = Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));
        return expected == fields["Signature"] ? null : "The request signature we calculated does not match the signature you provided.";
    }
}
