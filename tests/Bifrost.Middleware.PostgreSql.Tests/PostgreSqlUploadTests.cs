using System.Net;
using System.Text;
using System.Text.Json;
using Bifrost.Middleware.PostgreSql.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Npgsql;

namespace Bifrost.Middleware.PostgreSql.Tests;

/// <summary>Broken and hostile multipart uploads through HTTP with the PostgreSQL file store: a 400, and no file row or chunk left behind.</summary>
public sealed class PostgreSqlUploadTests : IAsyncDisposable
{
    private const string Boundary = "pgbound";
    private readonly string _schema = PostgresTestDatabase.NewSchema();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Field(string name, string value) => $"--{Boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n";

    private static string FilePart(string content) =>
        $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n{content}\r\n";

    // Large enough for several 64 KB chunks before the body breaks off.
    private static readonly string Lines = string.Concat(Enumerable.Range(0, 3000).Select(i =>
        $"{{\"custom_id\":\"r{i}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{{\"model\":\"local/echo\",\"messages\":[{{\"role\":\"user\",\"content\":\"hello {i}\"}}]}}}}\n"));

    public static TheoryData<string, string> Bodies => new()
    {
        { "no closing boundary", Field("purpose", "batch") + FilePart(Lines) },
        { "cut in the middle of the file", Field("purpose", "batch") + FilePart(Lines)[..^5000] },
        { "cut in the file, purpose not yet known", FilePart(Lines)[..^5000] },
        { "a 1 MB purpose after the file", FilePart(Lines) + Field("purpose", "batch" + new string(' ', 1024 * 1024)) + $"--{Boundary}--\r\n" },
        { "two file parts", Field("purpose", "batch") + FilePart(Lines) + FilePart(Lines) + $"--{Boundary}--\r\n" },
        { "conflicting purposes after the file", Field("purpose", "batch") + FilePart(Lines) + Field("purpose", "user_data") + $"--{Boundary}--\r\n" },
    };

    [Theory]
    [MemberData(nameof(Bodies))]
    public async Task A_broken_upload_is_a_400_and_leaves_no_file_row_or_chunk(string what, string body)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = Environments.Development });
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddBifrost(o =>
        {
            o.DefaultProvider = "local";
            o.Providers["local"] = new ProviderOptions { Type = "local" };
        }).UsePostgreSqlJobStore(o =>
        {
            o.ConnectionString = PostgresTestDatabase.Require();
            o.Schema = _schema;
            o.FileChunkSize = 64 * 1024;
        });
        await using var app = builder.Build();
        app.MapBifrost("/openai");
        await app.StartAsync(Ct);
        using var client = app.GetTestServer().CreateClient();

        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=" + Boundary);
        using var response = await client.PostAsync(new Uri("/openai/v1/files", UriKind.Relative), content, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{what}: {(int)response.StatusCode} {text}");
        using var json = JsonDocument.Parse(text);
        Assert.True(json.RootElement.GetProperty("is_bifrost_error").GetBoolean());

        await using var dataSource = PostgresTestDatabase.CreateDataSource();
        Assert.Equal(0L, await CountAsync(dataSource, "files"));
        Assert.Equal(0L, await CountAsync(dataSource, "file_chunks"));

        // A whole upload of the same content is stored (the store works; the 400s were about the bodies).
        var ok = new ByteArrayContent(Encoding.UTF8.GetBytes(Field("purpose", "batch") + FilePart(Lines) + $"--{Boundary}--\r\n"));
        ok.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=" + Boundary);
        using var stored = await client.PostAsync(new Uri("/openai/v1/files", UriKind.Relative), ok, Ct);
        Assert.Equal(HttpStatusCode.OK, stored.StatusCode);
        Assert.Equal(1L, await CountAsync(dataSource, "files"));
        await app.StopAsync(Ct);
    }

    private async Task<long> CountAsync(NpgsqlDataSource dataSource, string table)
    {
        await using var command = dataSource.CreateCommand($"SELECT count(*) FROM \"{_schema}\".{table}");
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }

    public async ValueTask DisposeAsync() => await PostgresTestDatabase.DropSchemaAsync(_schema);
}
