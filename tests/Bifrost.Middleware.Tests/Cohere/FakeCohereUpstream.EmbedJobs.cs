using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Cohere;

/// <summary>
/// The fake's Datasets and Embed Jobs APIs, as documented: <c>POST /v1/datasets?name&amp;type=embed-input&amp;keep_fields…</c>
/// with the JSONL file in the multipart field <c>data</c> → <c>{"id"}</c> (https://docs.cohere.com/reference/create-dataset;
/// rows keep <c>text</c> and the <c>keep_fields</c> only, a missing kept field fails validation); <c>GET /v1/datasets/{id}</c>
/// → <c>{"dataset": {id, validation_status, validation_error, dataset_parts: [{id, name, url, index}]}}</c>
/// (https://docs.cohere.com/reference/get-dataset; statuses queued, processing, failed, validated);
/// <c>POST /v1/embed-jobs</c> <c>{model, dataset_id, input_type, embedding_types, name}</c> → <c>{"job_id"}</c>, refused with
/// a 400 unless the dataset is validated (https://docs.cohere.com/reference/create-embed-job); <c>GET /v1/embed-jobs/{id}</c>
/// → <c>{job_id, name, status, model, input_dataset_id, output_dataset_id}</c> with status processing, complete, cancelling,
/// cancelled, failed (https://docs.cohere.com/reference/get-embed-job); <c>POST /v1/embed-jobs/{id}/cancel</c>
/// (https://docs.cohere.com/reference/cancel-embed-job). A complete job's output dataset is of type <c>embed-output</c>:
/// one row per input row, in the input's order, <c>{text, embeddings: {float: [...], int8: null}}</c> plus the kept fields
/// (https://docs.cohere.com/docs/embed-jobs-api, "Sample Output"); its parts are Avro object container files (the Python SDK
/// reads them with fastavro, cohere-python <c>src/cohere/utils.py</c>), served at <c>/storage/…</c> without any key — the
/// first part uncompressed, the second with the deflate codec.
/// </summary>
public sealed partial class FakeCohereUpstream
{
    private int _datasetCounter;

    public ConcurrentDictionary<string, FakeDataset> Datasets { get; } = new();

    public ConcurrentDictionary<string, FakeEmbedJob> EmbedJobs { get; } = new();

    /// <summary>Validation statuses an uploaded dataset reports before <c>validated</c> (one per read).</summary>
    public ConcurrentQueue<string> ValidationSteps { get; } = new();

    /// <summary>When set, a dataset's validation ends <c>failed</c> with this error.</summary>
    public string? ValidationError { get; set; }

    /// <summary>How many reads a job reports <c>processing</c> before it is complete.</summary>
    public int CompleteAfterPolls { get; set; } = 1;

    /// <summary>When set, jobs end <c>failed</c>.</summary>
    public bool FailJobs { get; set; }

    /// <summary>The fake's embedding of a text: [length, words, 0.25].</summary>
    public static float[] Vector(string text) => [text.Length, text.Split(' ').Length, 0.25f];

    private void MapEmbedJobs(WebApplication app)
    {
        app.MapPost("/v1/datasets", async (HttpContext context) =>
        {
            var form = await context.Request.ReadFormAsync();
            Record(context);
            var file = form.Files["data"];
            var keep = context.Request.Query["keep_fields"].Select(static f => f!).ToList();
            if (context.Request.Query["type"] != "embed-input" || file is null || string.IsNullOrEmpty(context.Request.Query["name"]))
            {
                context.Response.StatusCode = 400;
                await context.Response.WriteAsJsonAsync(new JsonObject { ["message"] = "invalid request: name, type=embed-input and a data file are required" });
                return;
            }

            using var reader = new StreamReader(file.OpenReadStream());
            var text = await reader.ReadToEndAsync();
            var id = "ds-" + Interlocked.Increment(ref _datasetCounter).ToString(CultureInfo.InvariantCulture);
            var rows = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
            var valid = ValidationError is null && rows.All(r => !string.IsNullOrEmpty(r["text"]?.GetValue<string>()) && keep.All(r.ContainsKey));
            Datasets[id] = new FakeDataset(id, file.FileName, text, [.. rows.Select(r => KeepOnly(r, keep))], keep, valid ? null : ValidationError ?? "a row is missing a kept field");
            await context.Response.WriteAsJsonAsync(new JsonObject { ["id"] = id });
        });

        app.MapGet("/v1/datasets/{id}", async (HttpContext context, string id) =>
        {
            Record(context);
            if (!Datasets.TryGetValue(id, out var dataset))
            {
                context.Response.StatusCode = 404;
                await context.Response.WriteAsJsonAsync(new JsonObject { ["message"] = $"dataset {id} not found" });
                return;
            }

            var status = dataset.Output ? "validated" : ValidationSteps.TryDequeue(out var step) ? step : dataset.Error is null ? "validated" : "failed";
            var parts = new JsonArray();
            if (dataset.Output)
            {
                for (var i = 0; i < 2; i++)
                {
                    parts.Add(new JsonObject { ["id"] = $"{id}-part-{i}", ["name"] = $"part-{i}.avro", ["url"] = $"{BaseUrl}/storage/{id}/part-{i}.avro", ["index"] = i });
                }
            }

            await context.Response.WriteAsJsonAsync(new JsonObject
            {
                ["dataset"] = new JsonObject
                {
                    ["id"] = id,
                    ["name"] = dataset.Name,
                    ["dataset_type"] = dataset.Output ? "embed-result" : "embed-input",
                    ["validation_status"] = status,
                    ["validation_error"] = status == "failed" ? dataset.Error : null,
                    ["dataset_parts"] = parts,
                },
            });
        });

        app.MapPost("/v1/embed-jobs", async (HttpContext context) =>
        {
            var body = (await RecordAsync(context))!;
            var datasetId = body["dataset_id"]?.GetValue<string>() ?? string.Empty;
            if (!Datasets.TryGetValue(datasetId, out var dataset) || dataset.Error is not null || !ValidationSteps.IsEmpty)
            {
                context.Response.StatusCode = 400;
                await context.Response.WriteAsJsonAsync(new JsonObject { ["message"] = $"invalid request: dataset {datasetId} is not validated" });
                return;
            }

            var id = "ej-" + Interlocked.Increment(ref _datasetCounter).ToString(CultureInfo.InvariantCulture);
            EmbedJobs[id] = new FakeEmbedJob(id, body["name"]?.GetValue<string>(), body["model"]!.GetValue<string>(), datasetId);
            await context.Response.WriteAsJsonAsync(new JsonObject { ["job_id"] = id, ["meta"] = new JsonObject { ["api_version"] = new JsonObject { ["version"] = "1" } } });
        });

        app.MapGet("/v1/embed-jobs/{id}", async (HttpContext context, string id) =>
        {
            Record(context);
            if (!EmbedJobs.TryGetValue(id, out var job))
            {
                context.Response.StatusCode = 404;
                await context.Response.WriteAsJsonAsync(new JsonObject { ["message"] = $"embed job {id} not found" });
                return;
            }

            if (job.Status == "processing" && ++job.Polls > CompleteAfterPolls)
            {
                job.Status = FailJobs ? "failed" : "complete";
                if (job.Status == "complete")
                {
                    var input = Datasets[job.InputDatasetId];
                    var outputId = "ds-out-" + id;
                    var rows = input.Rows.Select(r =>
                    {
                        var row = (JsonObject)r.DeepClone();
                        var vector = Vector(row["text"]!.GetValue<string>());
                        row["embeddings"] = new JsonObject { ["float"] = new JsonArray([.. vector.Select(static v => (JsonNode)v)]), ["int8"] = null };
                        return row;
                    }).ToList();
                    Datasets[outputId] = new FakeDataset(outputId, "embed-job-output", string.Empty, rows, input.Keep, null) { Output = true };
                    job.OutputDatasetId = outputId;
                }
            }

            await context.Response.WriteAsJsonAsync(new JsonObject
            {
                ["job_id"] = job.Id,
                ["name"] = job.Name,
                ["status"] = job.Status,
                ["created_at"] = "2026-12-06T12:00:00Z",
                ["input_dataset_id"] = job.InputDatasetId,
                ["output_dataset_id"] = job.OutputDatasetId,
                ["model"] = job.Model,
                ["truncate"] = "END",
            });
        });

        app.MapPost("/v1/embed-jobs/{id}/cancel", async (HttpContext context, string id) =>
        {
            Record(context);
            if (!EmbedJobs.TryGetValue(id, out var job))
            {
                context.Response.StatusCode = 404;
                await context.Response.WriteAsJsonAsync(new JsonObject { ["message"] = $"embed job {id} not found" });
                return;
            }

            job.Status = job.Status == "processing" ? "cancelled" : job.Status;
        });

        app.MapGet("/storage/{id}/part-{index:int}.avro", async (HttpContext context, string id, int index) =>
        {
            Record(context);
            var dataset = Datasets[id];
            var half = (dataset.Rows.Count + 1) / 2;
            var rows = index == 0 ? dataset.Rows.Take(half) : dataset.Rows.Skip(half);
            context.Response.ContentType = "application/octet-stream";
            await context.Response.Body.WriteAsync(AvroFile(rows.ToList(), dataset.Keep, deflate: index == 1));
        });
    }

    private void Record(HttpContext context) => Requests.Enqueue(new UpstreamRequest(
        context.Request.Method,
        context.Request.Path.Value!,
        context.Request.QueryString.Value ?? string.Empty,
        context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()),
        null));

    private static JsonObject KeepOnly(JsonObject row, List<string> keep)
    {
        var kept = new JsonObject { ["text"] = row["text"]?.DeepClone() };
        foreach (var field in keep.Where(row.ContainsKey))
        {
            kept[field] = row[field]!.DeepClone();
        }

        return kept;
    }

    /// <summary>
    /// An Avro object container file (https://avro.apache.org/docs/1.11.1/specification/#object-container-files) of the
    /// output rows: schema <c>{text: string, embeddings: {float: [null, array&lt;float&gt;], int8: [null, array&lt;int&gt;]}, kept: string...}</c>.
    /// </summary>
    public static byte[] AvroFile(IReadOnlyList<JsonObject> rows, IReadOnlyList<string> keep, bool deflate)
    {
        var fields = new JsonArray
        {
            new JsonObject { ["name"] = "text", ["type"] = "string" },
            new JsonObject
            {
                ["name"] = "embeddings",
                ["type"] = new JsonObject
                {
                    ["type"] = "record",
                    ["name"] = "Embeddings",
                    ["fields"] = new JsonArray
                    {
                        new JsonObject { ["name"] = "float", ["type"] = new JsonArray("null", new JsonObject { ["type"] = "array", ["items"] = "float" }) },
                        new JsonObject { ["name"] = "int8", ["type"] = new JsonArray("null", new JsonObject { ["type"] = "array", ["items"] = "int" }) },
                    },
                },
            },
        };
        foreach (var field in keep)
        {
            fields.Add(new JsonObject { ["name"] = field, ["type"] = "string" });
        }

        var schema = new JsonObject { ["type"] = "record", ["name"] = "EmbedOutput", ["namespace"] = "cohere.datasets", ["fields"] = fields }.ToJsonString();
        var data = new MemoryStream();
        var bytes = new byte[4];
        foreach (var row in rows)
        {
            WriteString(data, row["text"]!.GetValue<string>());
            var vector = row["embeddings"]!["float"]!.AsArray();
            WriteLong(data, 1); // union branch: array
            WriteLong(data, vector.Count);
            foreach (var value in vector)
            {
                BinaryPrimitives.WriteSingleLittleEndian(bytes, value!.GetValue<float>());
                data.Write(bytes);
            }

            WriteLong(data, 0); // end of the array
            WriteLong(data, 0); // int8: null
            foreach (var field in keep)
            {
                WriteString(data, row[field]!.GetValue<string>());
            }
        }

        var block = data.ToArray();
        if (deflate)
        {
            var compressed = new MemoryStream();
            using (var stream = new DeflateStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
            {
                stream.Write(block);
            }

            block = compressed.ToArray();
        }

        var sync = Enumerable.Range(1, 16).Select(static i => (byte)(i * 7)).ToArray();
        var file = new MemoryStream();
        file.Write("Obj\u0001"u8);
        WriteLong(file, 2);
        WriteString(file, "avro.schema");
        WriteBytes(file, Encoding.UTF8.GetBytes(schema));
        WriteString(file, "avro.codec");
        WriteBytes(file, Encoding.UTF8.GetBytes(deflate ? "deflate" : "null"));
        WriteLong(file, 0);
        file.Write(sync);
        if (rows.Count > 0)
        {
            WriteLong(file, rows.Count);
            WriteLong(file, block.Length);
            file.Write(block);
            file.Write(sync);
        }

        return file.ToArray();
    }

    private static void WriteString(Stream stream, string value) => WriteBytes(stream, Encoding.UTF8.GetBytes(value));

    private static void WriteBytes(Stream stream, byte[] value)
    {
        WriteLong(stream, value.Length);
        stream.Write(value);
    }

    private static void WriteLong(Stream stream, long value)
    {
        var zigzag = (ulong)((value << 1) ^ (value >> 63));
        while (zigzag >= 0x80)
        {
            stream.WriteByte((byte)(zigzag | 0x80));
            zigzag >>= 7;
        }

        stream.WriteByte((byte)zigzag);
    }

    public sealed record FakeDataset(string Id, string Name, string Uploaded, List<JsonObject> Rows, List<string> Keep, string? Error)
    {
        public bool Output { get; init; }
    }

    public sealed class FakeEmbedJob(string id, string? name, string model, string inputDatasetId)
    {
        public string Id { get; } = id;

        public string? Name { get; } = name;

        public string Model { get; } = model;

        public string InputDatasetId { get; } = inputDatasetId;

        public string Status { get; set; } = "processing";

        public int Polls { get; set; }

        public string? OutputDatasetId { get; set; }
    }
}
