using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Fuzz;

/// <summary>An answer reduced to what must agree across paths: the status and the error code.</summary>
public sealed record FuzzAnswer(int Status, string? Code, string Text)
{
    public bool IsSuccess => Status is >= 200 and < 300;

    public override string ToString() => IsSuccess ? $"{Status}" : $"{Status} {Code ?? "(no code)"}";

    /// <summary>Same status class, and the same error code when it is an error.</summary>
    public bool SameAs(FuzzAnswer other) => Status / 100 == other.Status / 100 && (IsSuccess || Code == other.Code);

    public string Excerpt => FuzzOracle.Excerpt(Text);
}

/// <summary>A broken property: on which path, what kind of breakage, and the details (answers, bodies).</summary>
public sealed record FuzzViolation(string Path, string Kind, string Detail)
{
    /// <summary>What groups equal failures (path and kind).</summary>
    public string Key => $"{Path}: {Kind}";
}

/// <summary>
/// Sends one body on every path of its route through the in-process host and checks the properties of issue 11:
/// never a 5xx (the safety net's 500 counts as a failure too), every non-2xx in the Bifrost error shape, and the same
/// answer synchronously, with <c>x-bf-async</c> (polled with <c>x-bf-async-id</c>) and on the <c>v1/async</c> envelope.
/// </summary>
public sealed class FuzzOracle(GatewayHost host)
{
    /// <summary>How long an accepted async job may take to finish (the local provider answers at once).</summary>
    public static readonly TimeSpan JobDeadline = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async Task<List<FuzzViolation>> CheckAsync(FuzzTarget target, string body)
    {
        var violations = new List<FuzzViolation>();
        switch (target.Path)
        {
            case FuzzPath.SyncOnly:
                await SendJsonAsync("sync", target.Url, body, violations);
                break;
            case FuzzPath.Stream:
                await StreamAsync(target.Url, body, violations);
                break;
            default:
                var sync = SendJsonAsync("sync", target.Url, body, violations);
                var header = HeaderAsyncAsync(target, body, violations);
                var envelope = EnvelopeAsync(target, body, violations);
                await Task.WhenAll(sync, header, envelope);
                Compare("x-bf-async", await sync, await header, violations);
                Compare("v1/async envelope", await sync, await envelope, violations);
                break;
        }

        return violations;
    }

    private static void Compare(string path, FuzzAnswer? sync, (FuzzAnswer? Submit, FuzzAnswer? Final) async, List<FuzzViolation> violations)
    {
        if (sync is null || async.Submit is null)
        {
            return; // already reported (exception or unreadable answer)
        }

        var outcome = async.Submit.IsSuccess ? async.Final : async.Submit;
        if (outcome is null)
        {
            return;
        }

        if (!sync.SameAs(outcome))
        {
            var how = async.Submit.IsSuccess ? $"submit accepted ({async.Submit.Status}), job ended {outcome}" : $"submit answered {outcome}";
            Add(violations, path, sync.Status / 100 == outcome.Status / 100 ? "same status class as sync but another error code" : "another status class than sync",
                $"sync answered {sync}, {path}: {how}\n    sync body: {sync.Excerpt}\n    {path} body: {outcome.Excerpt}");
        }
    }

    /// <summary>Sends a JSON body and checks the answer's shape; null when nothing comparable came back.</summary>
    private async Task<FuzzAnswer?> SendJsonAsync(string path, string url, string body, List<FuzzViolation> violations, params (string Name, string Value)[] headers)
    {
        try
        {
            using var request = Request(HttpMethod.Post, url, body, headers);
            using var response = await host.Client.SendAsync(request, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            return Checked(path, (int)response.StatusCode, text, violations);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !Ct.IsCancellationRequested)
        {
            Add(violations, path, "exception", $"{ex.GetType().Name}: {ex.Message}");
            return null;
        }
    }

    private async Task<(FuzzAnswer?, FuzzAnswer?)> HeaderAsyncAsync(FuzzTarget target, string body, List<FuzzViolation> violations)
    {
        const string path = "x-bf-async";
        var submit = await SendJsonAsync(path + " submit", target.Url, body, violations, ("x-bf-async", "true"));
        if (submit is not { IsSuccess: true })
        {
            return (submit, null);
        }

        if (Id(submit.Text) is not { } id)
        {
            Add(violations, path + " submit", "no job id", $"accepted without a string 'id': {submit.Excerpt}");
            return (null, null);
        }

        var until = DateTime.UtcNow + JobDeadline;
        while (true)
        {
            var poll = await SendJsonAsync(path + " poll", target.Url, "{}", violations, ("x-bf-async-id", id));
            if (poll is null)
            {
                return (submit, null);
            }

            if (!IsPending(target.Route, poll))
            {
                return (submit, poll);
            }

            if (DateTime.UtcNow > until)
            {
                Add(violations, path + " poll", "job never finished", $"job {id} still pending after {JobDeadline.TotalSeconds} s: {poll.Excerpt}");
                return (submit, null);
            }

            await Task.Delay(10, Ct);
        }
    }

    private async Task<(FuzzAnswer?, FuzzAnswer?)> EnvelopeAsync(FuzzTarget target, string body, List<FuzzViolation> violations)
    {
        const string path = "v1/async envelope";
        var submit = await SendJsonAsync(path + " submit", target.EnvelopeUrl, body, violations);
        if (submit is not { IsSuccess: true })
        {
            return (submit, null);
        }

        if (Id(submit.Text) is not { } id)
        {
            Add(violations, path + " submit", "no job id", $"accepted without a string 'id': {submit.Excerpt}");
            return (null, null);
        }

        var until = DateTime.UtcNow + JobDeadline;
        while (true)
        {
            FuzzAnswer? envelope;
            try
            {
                using var request = Request(HttpMethod.Get, $"{target.EnvelopeUrl}/{id}", null);
                using var response = await host.Client.SendAsync(request, Ct);
                var text = await response.Content.ReadAsStringAsync(Ct);
                envelope = Checked(path + " GET", (int)response.StatusCode, text, violations);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !Ct.IsCancellationRequested)
            {
                Add(violations, path + " GET", "exception", $"{ex.GetType().Name}: {ex.Message}");
                return (submit, null);
            }

            if (envelope is not { IsSuccess: true })
            {
                return (submit, envelope); // the GET itself failed: that is the outcome
            }

            using var json = JsonDocument.Parse(envelope.Text);
            var root = json.RootElement;
            var status = root.TryGetProperty("status", out var s) ? s.GetString() : null;
            switch (status)
            {
                case "completed":
                    return (submit, new FuzzAnswer(200, null, root.TryGetProperty("result", out var result) ? result.GetRawText() : envelope.Text));
                case "failed":
                {
                    if (!root.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object
                        || !root.TryGetProperty("status_code", out var code) || code.ValueKind != JsonValueKind.Number)
                    {
                        Add(violations, path + " GET", "failed job without status_code and error", envelope.Excerpt);
                        return (submit, null);
                    }

                    var answer = Checked(path + " GET (job error)", code.GetInt32(), error.GetRawText(), violations);
                    return (submit, answer);
                }

                case "pending" or "processing":
                    break;
                default:
                    Add(violations, path + " GET", "unknown job status", envelope.Excerpt);
                    return (submit, null);
            }

            if (DateTime.UtcNow > until)
            {
                Add(violations, path + " GET", "job never finished", $"job {id} still {status} after {JobDeadline.TotalSeconds} s");
                return (submit, null);
            }

            await Task.Delay(10, Ct);
        }
    }

    private async Task StreamAsync(string url, string body, List<FuzzViolation> violations)
    {
        const string path = "stream";
        try
        {
            using var request = Request(HttpMethod.Post, url, body);
            using var response = await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            var status = (int)response.StatusCode;
            if (status != 200 || response.Content.Headers.ContentType?.MediaType != "text/event-stream")
            {
                Checked(path, status, text, violations);
                return;
            }

            foreach (var (_, data) in Inference.InferenceKit.ParseSse(text))
            {
                if (data == "[DONE]")
                {
                    continue;
                }

                JsonElement json;
                try
                {
                    json = JsonDocument.Parse(data).RootElement.Clone();
                }
                catch (JsonException ex)
                {
                    Add(violations, path, "event is not JSON", $"{ex.Message}: {Excerpt(data)}");
                    continue;
                }

                // An error event (chat/completions: {"error": ...} in the Bifrost shape; responses: type "error").
                if (json.ValueKind == JsonValueKind.Object && (json.TryGetProperty("is_bifrost_error", out _) || (json.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.Object && !json.TryGetProperty("type", out _))))
                {
                    var code = json.TryGetProperty("status_code", out var sc) && sc.ValueKind == JsonValueKind.Number ? sc.GetInt32() : 0;
                    Checked(path + " error event", code == 0 ? 400 : code, data, violations);
                }
                else if (json.TryGetProperty("type", out var type) && type.GetString() == "error")
                {
                    var code = json.TryGetProperty("status_code", out var sc) && sc.ValueKind == JsonValueKind.Number ? sc.GetInt32() : 0;
                    if (code >= 500)
                    {
                        Add(violations, path + " error event", $"{code}", Excerpt(data));
                    }
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !Ct.IsCancellationRequested)
        {
            Add(violations, path, "exception", $"{ex.GetType().Name}: {ex.Message}");
        }
    }

    /// <summary>Checks one answer: not a 5xx, JSON, the Bifrost error shape when not 2xx.</summary>
    public static FuzzAnswer? Checked(string path, int status, string text, List<FuzzViolation> violations)
    {
        if (status >= 500)
        {
            Add(violations, path, $"{status} (server error)", Excerpt(text));
        }
        else if (status is < 200 or (>= 300 and < 400) or > 599)
        {
            Add(violations, path, $"status {status} is not a valid answer", Excerpt(text));
        }

        if (status is >= 200 and < 300)
        {
            try
            {
                using var json = JsonDocument.Parse(text);
                return new FuzzAnswer(status, null, text);
            }
            catch (JsonException ex)
            {
                Add(violations, path, "2xx body is not JSON", $"{ex.Message}: {Excerpt(text)}");
                return null;
            }
        }

        if (ErrorShapeProblem(status, text, out var code) is { } problem)
        {
            if (status >= 500)
            {
                return null; // already a failure: its shape is not reported twice, and nothing comparable came back
            }

            Add(violations, path, "not the Bifrost error shape", $"{status}: {problem}: {Excerpt(text)}");
            return new FuzzAnswer(status, code, text);
        }

        return new FuzzAnswer(status, code, text);
    }

    /// <summary>What is wrong with an error body (null: it is a Bifrost error: is_bifrost_error, status_code, error.message, extra_fields an object when present).</summary>
    public static string? ErrorShapeProblem(int status, string text, out string? code)
    {
        code = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return "empty body";
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException ex)
        {
            return "not JSON (" + ex.Message + ")";
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return "not a JSON object";
            }

            if (!root.TryGetProperty("is_bifrost_error", out var isBifrost) || isBifrost.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                return "no boolean is_bifrost_error";
            }

            if (!root.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object)
            {
                return "no error object";
            }

            if (!error.TryGetProperty("message", out var message) || message.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(message.GetString()))
            {
                return "no error.message";
            }

            code = error.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
            if (root.TryGetProperty("status_code", out var statusCode) && (statusCode.ValueKind != JsonValueKind.Number || statusCode.GetInt32() != status))
            {
                return $"status_code {statusCode.GetRawText()} differs from the HTTP status";
            }

            if (root.TryGetProperty("extra_fields", out var extra) && extra.ValueKind != JsonValueKind.Object)
            {
                return "extra_fields is not an object";
            }
        }

        return null;
    }

    public static string Excerpt(string text) => text.Length <= 600 ? text : text[..600] + $"... ({text.Length} chars)";

    private static void Add(List<FuzzViolation> violations, string path, string kind, string detail)
    {
        lock (violations)
        {
            violations.Add(new FuzzViolation(path, kind, detail));
        }
    }

    private static string? Id(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String && id.GetString() is { Length: > 0 } value ? value : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The pending shape of an <c>x-bf-async-id</c> poll, per route.</summary>
    private static bool IsPending(string route, FuzzAnswer poll)
    {
        if (poll.Status == 202)
        {
            return true;
        }

        if (poll.Status != 200)
        {
            return false;
        }

        using var document = JsonDocument.Parse(poll.Text);
        var root = document.RootElement;
        return route switch
        {
            "responses" => root.TryGetProperty("status", out var s) && s.GetString() is "queued" or "in_progress",
            "embeddings" => root.TryGetProperty("data", out var d) && d.ValueKind == JsonValueKind.Array && d.GetArrayLength() == 0 && !root.TryGetProperty("usage", out _),
            _ => root.TryGetProperty("choices", out var c) && c.ValueKind == JsonValueKind.Array && c.GetArrayLength() == 0 && !root.TryGetProperty("usage", out _),
        };
    }

    private static HttpRequestMessage Request(HttpMethod method, string url, string? body, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(method, url);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return request;
    }
}
