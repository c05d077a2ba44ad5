// The README's plugin example, compiled and tested here (PluginDocumentationTests checks that README shows it verbatim).
namespace Bifrost.Middleware.Tests.Plugins;

internal sealed class Guardrail : IBifrostPlugin
{
    public ValueTask PreHookAsync(BifrostPluginContext context, CancellationToken cancellationToken)
    {
        // The context is typed by the operation: BifrostPluginContext<TRequest, TResponse, TChunk>.
        if (context is BifrostPluginContext<ChatCompletionRequest, ChatCompletionResponse, ChatCompletionChunk> chat
            && chat.Request.Messages!.Any(m => m.Content?.GetText().Contains("secret") == true))
        {
            context.Reject(BifrostException.Gateway(403, "permission_error", "blocked", "No secrets, please."));
        }

        return ValueTask.CompletedTask;
    }
}
