using System.Diagnostics;
using Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Tests.AIAbstractions;

/// <summary><c>AddBifrost(...).AddChatClient(...)</c> and friends: registrations that compose with M.E.AI middleware.</summary>
public sealed class AIRegistrationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AddChatClient_registers_the_gateway_with_its_middleware_pipeline()
    {
        var invoked = 0;
        await using var services = AIHost.Build(bifrost: b => b.AddChatClient("local/echo").Use((messages, options, next, ct) =>
        {
            invoked++;
            return next(messages, options, ct);
        }).UseFunctionInvocation());

        var chat = services.GetRequiredService<IChatClient>();
        var response = await chat.GetResponseAsync("through the pipeline", cancellationToken: Ct);

        Assert.Equal("through the pipeline", response.Text);
        Assert.Equal(1, invoked);
        Assert.NotNull(chat.GetService<FunctionInvokingChatClient>());
        Assert.Equal("bifrost", chat.GetService<ChatClientMetadata>()!.ProviderName);
        Assert.Same(chat, services.GetRequiredService<IChatClient>()); // singleton by default
    }

    [Fact]
    public async Task Keyed_registrations_give_one_client_per_model()
    {
        await using var services = AIHost.Build(bifrost: b =>
        {
            b.AddKeyedChatClient("echo", "local/echo");
            b.AddKeyedChatClient("acme", "acme/m");
            b.AddKeyedEmbeddingGenerator("vectors", "local/echo", defaultDimensions: 12);
        });

        var echo = await services.GetRequiredKeyedService<IChatClient>("echo").GetResponseAsync("same words", cancellationToken: Ct);
        var acme = await services.GetRequiredKeyedService<IChatClient>("acme").GetResponseAsync("same words", cancellationToken: Ct);
        var vector = await services.GetRequiredKeyedService<IEmbeddingGenerator<string, Embedding<float>>>("vectors").GenerateVectorAsync("v", cancellationToken: Ct);

        Assert.Equal("same words", echo.Text);
        Assert.Equal("reply from acme", acme.Text);
        Assert.Equal(12, vector.Length);
        Assert.Null(services.GetService<IChatClient>());
    }

    [Fact]
    public async Task AddEmbeddingGenerator_registers_the_gateways_embeddings()
    {
        await using var services = AIHost.Build(bifrost: b => b.AddEmbeddingGenerator("local/echo", defaultDimensions: 24));

        var generator = services.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        var embeddings = await generator.GenerateAsync(["a", "b"], cancellationToken: Ct);

        Assert.Equal([24, 24], embeddings.Select(e => e.Dimensions));
        Assert.Equal("local/echo", generator.GetService<EmbeddingGeneratorMetadata>()!.DefaultModelId);
    }

    [Fact]
    public async Task UseOpenTelemetry_reports_the_gateway_as_the_provider_and_the_usage()
    {
        const string SourceName = "Bifrost.Tests.AIAbstractions.OTel";
        var activities = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activities.Add,
        };
        ActivitySource.AddActivityListener(listener);
        await using var services = AIHost.Build(bifrost: b => b.AddChatClient("local/echo").UseOpenTelemetry(sourceName: SourceName));

        await services.GetRequiredService<IChatClient>().GetResponseAsync("traced call", cancellationToken: Ct);

        var activity = Assert.Single(activities, a => a.Source.Name == SourceName);
        Assert.Equal("bifrost", activity.GetTagItem("gen_ai.provider.name"));
        Assert.Equal("local/echo", activity.GetTagItem("gen_ai.request.model"));
        Assert.Equal("echo", activity.GetTagItem("gen_ai.response.model"));
        Assert.Equal(2, Convert.ToInt32(activity.GetTagItem("gen_ai.usage.output_tokens"), System.Globalization.CultureInfo.InvariantCulture));
    }
}
