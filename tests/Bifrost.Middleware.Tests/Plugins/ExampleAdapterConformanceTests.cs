using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Acme.Bifrost;
using Bifrost.Middleware.Testing;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Plugins;

/// <summary>The documentation's example plugin (<see cref="AcmeAdapter"/>) against the adapter conformance suite, with a fake Acme API.</summary>
public sealed class ExampleAdapterConformanceTests : ProviderAdapterConformanceTests<AcmeAdapter>
{
    private LocalServer _server = null!;
    private ServiceProvider _services = null!;
    private ProviderScript _script = new();

    public override async ValueTask InitializeAsync()
    {
        _server = await LocalServer.StartAsync(app => app.MapPost("/generate", GenerateAsync));
        var services = new ServiceCollection();
        services.AddHttpClient(AcmeAdapter.HttpClientName);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<AcmeAdapter>();
        _services = services.BuildServiceProvider();
    }

    public override async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await _server.DisposeAsync();
        await base.DisposeAsync();
    }

    protected override ValueTask<AcmeAdapter> CreateAdapterAsync() => ValueTask.FromResult(_services.GetRequiredService<AcmeAdapter>());

    protected override ProviderContext CreateContext() => new("acme", new ProviderOptions { BaseUrl = _server.Address }, "acme-1", "acme-key");

    protected override ValueTask<bool> ScriptAsync(ProviderScript script, ChatCompletionRequest request)
    {
        _script = script;
        return ValueTask.FromResult(true);
    }

    /// <summary>The whole plugin story end to end: registered with AddProvider, routed by name, called over HTTP.</summary>
    [Fact]
    public async Task The_example_plugin_serves_acme_models_through_the_gateway()
    {
        await using var host = await GatewayHost.StartAsync(
            options => options.Providers["acme"] = new ProviderOptions { BaseUrl = _server.Address, Keys = [new ProviderKeyOptions { Value = "acme-key" }] },
            bifrost => bifrost.AddProvider<AcmeAdapter>("acme"),
            services => services.AddHttpClient(AcmeAdapter.HttpClientName));

        using var response = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"acme/acme-1","messages":[{"role":"user","content":"hi"}]}""", TestContext.Current.CancellationToken);
        var json = await GatewayHost.ReadJsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(_script.Reply, json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("acme", json.GetProperty("extra_fields").GetProperty("provider").GetString());
    }

    /// <summary>The fake Acme API: JSON, or NDJSON lines when streaming; failures as <c>{"error": "..."}</c>.</summary>
    private async Task GenerateAsync(HttpContext context)
    {
        var request = (await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted))!;
        Assert.Equal("Bearer acme-key", context.Request.Headers.Authorization.ToString());
        if (_script.ResponseDelay > TimeSpan.Zero)
        {
            await Task.Delay(_script.ResponseDelay, context.RequestAborted);
        }

        if (_script.FailWithStatus is { } status)
        {
            context.Response.StatusCode = status;
            if (_script.RetryAfter is { } retryAfter)
            {
                context.Response.Headers.RetryAfter = ((int)retryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
            }

            await context.Response.WriteAsJsonAsync(new JsonObject { ["error"] = _script.FailWithMessage });
            return;
        }

        var words = _script.Reply.Split(' ');
        var input = request["prompt"]!.GetValue<string>().Split(' ').Length;
        if (request["stream"]?.GetValue<bool>() != true)
        {
            await context.Response.WriteAsJsonAsync(new JsonObject { ["id"] = "acme-1", ["text"] = _script.Reply, ["input_tokens"] = input, ["output_tokens"] = words.Length });
            return;
        }

        context.Response.ContentType = "application/x-ndjson";
        for (var i = 0; i < words.Length; i++)
        {
            if (i > 0 && _script.ChunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(_script.ChunkDelay, context.RequestAborted);
            }

            await context.Response.WriteAsync(new JsonObject { ["delta"] = i == 0 ? words[i] : " " + words[i] }.ToJsonString() + "\n", context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }

        await context.Response.WriteAsync(new JsonObject { ["done"] = true, ["input_tokens"] = input, ["output_tokens"] = words.Length }.ToJsonString() + "\n", context.RequestAborted);
    }
}
