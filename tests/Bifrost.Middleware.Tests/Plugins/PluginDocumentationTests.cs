using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Plugins;

/// <summary>The README's plugin guide shows exactly the example adapter that is compiled and conformance-tested here.</summary>
public sealed class PluginDocumentationTests
{
    [Fact]
    public void The_guide_shows_the_compiled_example_adapter()
    {
        var root = Repository.Root;
        var source = File.ReadAllLines(Path.Combine(root, "tests", "Bifrost.Middleware.Tests", "Plugins", "ExampleAdapter.cs"));
        var example = string.Join('\n', source.SkipWhile(l => l.StartsWith("//", StringComparison.Ordinal))).TrimEnd();
        var guide = File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n");

        Assert.Contains("```csharp\n" + example.ReplaceLineEndings("\n") + "\n```", guide, StringComparison.Ordinal);
    }

    [Fact]
    public void The_plugin_section_shows_the_compiled_guardrail()
    {
        var root = Repository.Root;
        var source = File.ReadAllLines(Path.Combine(root, "tests", "Bifrost.Middleware.Tests", "Plugins", "ExampleGuardrail.cs"));
        var example = string.Join('\n', source.SkipWhile(l => !l.StartsWith("internal sealed class", StringComparison.Ordinal))).TrimEnd();
        var guide = File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n");

        Assert.Contains("using Bifrost.Middleware.Plugins;\n\n" + example.ReplaceLineEndings("\n") + "\n", guide, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_guardrail_rejects_a_secret_and_lets_the_rest_through()
    {
        await using var host = await Infrastructure.GatewayHost.StartAsync(bifrost: b => b.AddPlugin<Guardrail>());
        var ct = TestContext.Current.CancellationToken;

        using var refused = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"my secret"}]}""", ct);
        using var passed = await host.PostJsonAsync("/openai/v1/chat/completions", """{"model":"local/echo","messages":[{"role":"user","content":"hello"}]}""", ct);

        Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("\"code\":\"blocked\"", await refused.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.OK, passed.StatusCode);
    }
}
