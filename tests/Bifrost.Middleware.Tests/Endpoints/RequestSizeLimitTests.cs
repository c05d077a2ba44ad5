using System.Net;
using System.Text;
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

            // Chunked, without a Content-Length: the limit applies while reading.
            using var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(Body(10_000))));
            chunked.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            using var request = new HttpRequestMessage(HttpMethod.Post, "/openai/chat/completions") { Content = chunked };
            request.Headers.TransferEncodingChunked = true;
            using var response = await client.SendAsync(request, ct);
            var error = await ErrorAssert.BifrostErrorAsync(response, 413);
            Assert.Equal("request_too_large", error.GetProperty("error").GetProperty("code").GetString());
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
        }
    }
}
