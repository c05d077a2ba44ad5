using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Inference;

/// <summary>Helpers of the inference-route tests: JSON requests, SSE parsing, polling with a deadline, error and JSON assertions.</summary>
internal static class InferenceKit
{
    public static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>How long any "eventually" may take before the test fails.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    /// <summary>A host with the local provider and fast job polling.</summary>
    public static Task<GatewayHost> StartLocalAsync(Action<BifrostOptions>? configure = null) => GatewayHost.StartAsync(options =>
    {
        options.Jobs.PollInterval = TimeSpan.FromMilliseconds(20);
        configure?.Invoke(options);
    });

    public static async Task<HttpResponseMessage> SendAsync(this GatewayHost host, HttpMethod method, string path, string? body, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        foreach (var (name, value) in headers)
        {
            Assert.True(request.Headers.TryAddWithoutValidation(name, value), $"header {name}");
        }

        return await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
    }

    public static Task<HttpResponseMessage> PostAsync(this GatewayHost host, string path, JsonNode body, params (string Name, string Value)[] headers) =>
        host.SendAsync(HttpMethod.Post, path, body.ToJsonString(), headers);

    /// <summary>POSTs and expects 200 with a JSON body.</summary>
    public static async Task<JsonElement> PostOkAsync(this GatewayHost host, string path, JsonNode body, params (string Name, string Value)[] headers)
    {
        using var response = await host.PostAsync(path, body, headers);
        var json = await ReadAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path} answered {(int)response.StatusCode}: {json}");
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        return json;
    }

    /// <summary>POSTs and expects a Bifrost error with the given status and code; returns the error body.</summary>
    public static async Task<JsonElement> PostErrorAsync(this GatewayHost host, string path, JsonNode body, int status, string code, string? param = null)
    {
        using var response = await host.PostAsync(path, body);
        var json = await ReadAsync(response);
        Assert.True((int)response.StatusCode == status, $"{path} answered {(int)response.StatusCode} (expected {status}): {json}");
        AssertError(json, status, code, param);
        return json;
    }

    public static async Task<JsonElement> ReadAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.False(string.IsNullOrEmpty(text), $"empty body with status {(int)response.StatusCode}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public static void AssertError(JsonElement json, int status, string code, string? param = null)
    {
        Assert.Equal(status, json.GetProperty("status_code").GetInt32());
        Assert.True(json.GetProperty("is_bifrost_error").GetBoolean(), json.ToString());
        var error = json.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        if (param is not null)
        {
            Assert.Equal(param, error.GetProperty("param").GetString());
        }
    }

    /// <summary>Reads a <c>data:</c>-only SSE stream (chat, text completions): the JSON events and whether <c>[DONE]</c> ended it.</summary>
    public static async Task<(List<JsonElement> Chunks, bool Done)> ReadDataStreamAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var chunks = new List<JsonElement>();
        var done = false;
        foreach (var (eventType, data) in ParseSse(await response.Content.ReadAsStringAsync(Ct)))
        {
            Assert.Null(eventType);
            Assert.False(done, "nothing may follow [DONE]");
            if (data == "[DONE]")
            {
                done = true;
                continue;
            }

            chunks.Add(JsonDocument.Parse(data).RootElement.Clone());
        }

        return (chunks, done);
    }

    /// <summary>Reads a Responses SSE stream: each event's <c>event:</c> name and JSON; asserts the name matches the JSON's <c>type</c>.</summary>
    public static async Task<List<(string Type, JsonElement Data)>> ReadEventStreamAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"stream answered {(int)response.StatusCode}: {text}");
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = new List<(string, JsonElement)>();
        foreach (var (eventType, data) in ParseSse(text))
        {
            Assert.NotEqual("[DONE]", data);
            var json = JsonDocument.Parse(data).RootElement.Clone();
            var type = json.GetProperty("type").GetString()!;
            Assert.Equal(type, eventType);
            events.Add((type, json));
        }

        return events;
    }

    /// <summary>Splits SSE text into events (<c>event:</c> name or null, joined <c>data:</c> lines).</summary>
    public static List<(string? Event, string Data)> ParseSse(string text)
    {
        var events = new List<(string?, string)>();
        foreach (var block in text.Replace("\r\n", "\n", StringComparison.Ordinal).Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            string? name = null;
            var data = new List<string>();
            foreach (var line in block.Split('\n'))
            {
                if (line.StartsWith("event:", StringComparison.Ordinal))
                {
                    name = line["event:".Length..].Trim();
                }
                else if (line.StartsWith("data:", StringComparison.Ordinal))
                {
                    data.Add(line["data:".Length..].TrimStart());
                }
            }

            if (data.Count > 0)
            {
                events.Add((name, string.Join('\n', data)));
            }
        }

        return events;
    }

    /// <summary>Calls <paramref name="probe"/> until it returns a value, failing after <see cref="Deadline"/>.</summary>
    public static async Task<T> EventuallyAsync<T>(string what, Func<Task<T?>> probe)
    {
        var until = DateTime.UtcNow + Deadline;
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            if (DateTime.UtcNow > until)
            {
                Assert.Fail($"Timed out after {Deadline.TotalSeconds} s waiting for {what}.");
            }

            await Task.Delay(20, Ct);
        }
    }

    /// <summary>A response without what differs between two runs of the same request (ids, creation times, latency).</summary>
    public static JsonNode WithoutVolatileFields(JsonElement json)
    {
        var node = JsonNode.Parse(json.GetRawText())!.AsObject();
        node.Remove("id");
        node.Remove("created");
        node.Remove("created_at");
        node["extra_fields"]?.AsObject().Remove("latency");
        if (node["output"] is JsonArray output)
        {
            foreach (var item in output)
            {
                item?.AsObject().Remove("id");
            }
        }

        return node;
    }

    public static void AssertSameJson(JsonNode expected, JsonNode actual) =>
        Assert.True(JsonNode.DeepEquals(expected, actual), $"expected\n{expected.ToJsonString()}\nbut got\n{actual.ToJsonString()}");

    public static float[] Floats(JsonElement embedding) => [.. embedding.EnumerateArray().Select(v => v.GetSingle())];

    /// <summary>Decodes OpenAI's base64 embedding: little-endian float32 bytes.</summary>
    public static float[] DecodeBase64(string base64)
    {
        var bytes = Convert.FromBase64String(base64);
        Assert.Equal(0, bytes.Length % 4);
        var values = new float[bytes.Length / 4];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4, 4));
        }

        return values;
    }
}
