using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Bifrost.Middleware.Tests.Endpoints;

/// <summary>Bifrost:MaxRequestBodySize on a real Kestrel (TestHost has no body-size feature).</summary>
public sealed class RequestSizeLimitTests
{
    private static string Body(int textLength) =>
        $$"""{"model":"local/echo","messages":[{"role":"user","content":"{{new string('a', textLength)}}"}]}""";

    [Fact]
    public async Task A_body_over_MaxRequestBodySize_is_a_413_Bifrost_error_and_one_under_it_is_served()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local" };
            options.MaxRequestBodySize = 2048;
        });
        await using var app = builder.Build();
        app.MapBifrost();
        await app.StartAsync(TestContext.Current.CancellationToken);
        try
        {
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            // Expect: 100-continue makes the client wait for the server's verdict before sending a body, so the 413 is read
            // instead of racing the server's close of a connection the client is still writing to.
            using var client = new HttpClient { BaseAddress = new Uri(address) };
            client.DefaultRequestHeaders.ExpectContinue = true;
            var ct = TestContext.Current.CancellationToken;

            using (var small = await client.PostAsync("/openai/v1/chat/completions", new StringContent(Body(1000), Encoding.UTF8, "application/json"), ct))
            {
                Assert.Equal(HttpStatusCode.OK, small.StatusCode);
            }

            // With a Content-Length above the limit.
            using (var large = await client.PostAsync("/openai/v1/chat/completions", new StringContent(Body(10_000), Encoding.UTF8, "application/json"), ct))
            {
                var json = await ErrorAssert.BifrostErrorAsync(large, 413);
                Assert.Equal("request_too_large", json.GetProperty("error").GetProperty("code").GetString());
                Assert.Equal("chat_completion", json.GetProperty("extra_fields").GetProperty("request_type").GetString());
            }

            // Chunked, without a Content-Length: the limit applies while reading. Sent over a socket in one write (the whole
            // request fits the socket's buffers), then the answer read: the server answers 413 and closes after reading only
            // part of the body, and an HttpClient still writing the body then fails with a broken pipe instead of reading it.
            var (status, headers, body) = await SendChunkedAsync(new Uri(address), "/openai/chat/completions", Body(10_000), ct);
            Assert.Equal(413, status);
            Assert.Contains("content-type: application/json", headers, StringComparison.OrdinalIgnoreCase);
            using var document = JsonDocument.Parse(body);
            ErrorAssert.Shape(document.RootElement, 413);
            Assert.Equal("request_too_large", document.RootElement.GetProperty("error").GetProperty("code").GetString());
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>POSTs <paramref name="json"/> with <c>Transfer-Encoding: chunked</c> in one socket write; returns the status, the header block and the body.</summary>
    private static async Task<(int Status, string Headers, string Body)> SendChunkedAsync(Uri address, string path, string json, CancellationToken ct)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(address.Host, address.Port, ct);
        var payload = Encoding.UTF8.GetBytes(json);
        var request = new StringBuilder()
            .Append("POST ").Append(path).Append(" HTTP/1.1\r\n")
            .Append("Host: ").Append(address.Authority).Append("\r\n")
            .Append("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            .Append(payload.Length.ToString("x", System.Globalization.CultureInfo.InvariantCulture)).Append("\r\n")
            .Append(json).Append("\r\n0\r\n\r\n")
            .ToString();
        await socket.SendAsync(Encoding.UTF8.GetBytes(request), System.Net.Sockets.SocketFlags.None, ct);

        using var received = new MemoryStream();
        var buffer = new byte[8192];
        int read;
        while ((read = await socket.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, ct)) > 0)
        {
            received.Write(buffer, 0, read);
        }

        var text = Encoding.UTF8.GetString(received.ToArray());
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end > 0, $"no complete answer: {text}");
        var head = text[..end];
        var status = int.Parse(head.Split(' ', 3)[1], System.Globalization.CultureInfo.InvariantCulture);
        var content = text[(end + 4)..];
        if (head.Contains("transfer-encoding: chunked", StringComparison.OrdinalIgnoreCase))
        {
            content = Unchunk(content);
        }

        return (status, head, content);
    }

    private static string Unchunk(string chunked)
    {
        var body = new StringBuilder();
        var at = 0;
        while (true)
        {
            var lineEnd = chunked.IndexOf("\r\n", at, StringComparison.Ordinal);
            var size = int.Parse(chunked.AsSpan(at, lineEnd - at), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
            if (size == 0)
            {
                return body.ToString();
            }

            body.Append(chunked, lineEnd + 2, size);
            at = lineEnd + 2 + size + 2;
        }
    }
}
