using System.ComponentModel.DataAnnotations;

namespace Bifrost.Middleware;

/// <summary>
/// Options of the gateway, bindable from configuration (conventionally the <c>Bifrost</c> section).
/// Read once at start and validated then: a wrong value stops the host with a message naming it.
/// </summary>
public sealed class BifrostOptions
{
    /// <summary>
    /// The provider used for a bare model name (one without <c>provider/</c>). Optional. When this provider accepts any
    /// model (its <see cref="ProviderOptions.Models"/> is empty), it is also the catch-all: a model whose prefix is not a
    /// provider name (<c>meta-llama/Llama-3.1-8B</c>, or a misspelt <c>opnai/gpt-4o</c>) is passed to it whole, and the
    /// first such model of each prefix is logged at Information naming this provider. With a <c>Models</c> list, such a
    /// model is a 400 <c>provider_not_found</c> instead.
    /// </summary>
    public string? DefaultProvider { get; set; }

    /// <summary>The providers, by name. The name is the prefix of model strings (<c>openai</c> in <c>openai/gpt-4o-mini</c>).</summary>
    public IDictionary<string, ProviderOptions> Providers { get; set; } = new Dictionary<string, ProviderOptions>(StringComparer.OrdinalIgnoreCase);

    /// <summary>Largest accepted JSON request body on the inference routes, in bytes. Default 32 MiB.</summary>
    [Range(1024, long.MaxValue)]
    public long MaxRequestBodySize { get; set; } = 32 * 1024 * 1024;

    /// <summary>The background job engine behind async inference and batches.</summary>
    [Microsoft.Extensions.Options.ValidateObjectMembers]
    public JobsOptions Jobs { get; set; } = new();

    /// <summary>The files API and its store.</summary>
    [Microsoft.Extensions.Options.ValidateObjectMembers]
    public FilesOptions Files { get; set; } = new();

    /// <summary>The batches API.</summary>
    [Microsoft.Extensions.Options.ValidateObjectMembers]
    public BatchesOptions Batches { get; set; } = new();

    /// <summary>
    /// Model prices keyed by <c>provider/model</c> (e.g. <c>local/echo</c>), USD per million tokens: added to the embedded
    /// catalog or replacing its entry. Used for <c>extra_fields.cost</c>.
    /// </summary>
    public IDictionary<string, ModelPriceOptions> Pricing { get; set; } = new Dictionary<string, ModelPriceOptions>(StringComparer.OrdinalIgnoreCase);
    /// <summary>Governance: the mode and the virtual keys (checked at start by the options validator).</summary>
    public GovernanceOptions Governance { get; set; } = new();

    /// <summary>Traces: what the gateway's spans carry (<c>Bifrost:Telemetry</c>).</summary>
    [Microsoft.Extensions.Options.ValidateObjectMembers]
    public TelemetryOptions Telemetry { get; set; } = new();

    /// <summary>The request log: on by default (in memory, the newest 10,000 calls), its retention and content capture.</summary>
    [Microsoft.Extensions.Options.ValidateObjectMembers]
    public RequestLog.RequestLogOptions RequestLog { get; set; } = new();

    /// <summary>The Azure OpenAI-compatible inbound routes (<c>MapBifrostAzure</c>): deployments and the <c>api-version</c> rule (<c>Bifrost:AzureInbound</c>).</summary>
    public AzureInboundOptions AzureInbound { get; set; } = new();

    // Response cache (Caching/).

    /// <summary>The exact response cache (<c>Bifrost:Cache</c>): off by default; see <see cref="Caching.ResponseCacheOptions"/>.</summary>
    [Microsoft.Extensions.Options.ValidateObjectMembers]
    public Caching.ResponseCacheOptions Cache { get; set; } = new();
}

/// <summary>
/// Options of the gateway's spans (ActivitySource <c>Bifrost.Middleware</c>, OpenTelemetry GenAI semantic conventions).
/// The host chooses exporters; with no listener attached no span is created.
/// </summary>
public sealed class TelemetryOptions
{
    /// <summary>
    /// Whether chat spans carry the messages (an event <c>gen_ai.client.inference.operation.details</c> with
    /// <c>gen_ai.input.messages</c> and <c>gen_ai.output.messages</c>; for a stream, the event is added when it ends, with
    /// the choices it assembled to, as far as it got, up to <see cref="MaxStreamContentLength"/>). Off by default: prompts
    /// and answers may hold personal data. The convention's environment variable
    /// <c>OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true</c> turns it on too.
    /// </summary>
    public bool CaptureMessageContent { get; set; }

    /// <summary>
    /// With content capture: the most characters of a streamed answer's content (text and tool calls) kept for the span;
    /// what exceeds it is dropped and the event carries <c>bifrost.output.truncated = true</c>. Default 65,536.
    /// </summary>
    [Range(1, 100_000_000)]
    public int MaxStreamContentLength { get; set; } = 65_536;

    /// <summary>
    /// How many lines of each batch get spans of their own (the first ones run); the others are summarised on the batch's
    /// span (counts by outcome, and an event per failed line up to <see cref="BatchFailureEvents"/>). Default 10; 0: none.
    /// </summary>
    public int BatchLineSpans { get; set; } = 10;

    /// <summary>How many failed lines of a batch are recorded as events on the batch's span. Default 100.</summary>
    public int BatchFailureEvents { get; set; } = 100;

    /// <summary>
    /// When the calls to providers carry the W3C trace context (<c>traceparent</c>, <c>tracestate</c>) and get HttpClient's
    /// own <c>Activity</c>. Default <see cref="Middleware.UpstreamTraceContext.Auto"/>: only when the trace is recorded, the
    /// client's request came with a trace context, or something listens to HttpClient's activities (e.g. OpenTelemetry's
    /// HttpClient instrumentation) — not merely because ASP.NET Core started an <c>Activity</c> for its logging.
    /// </summary>
    public UpstreamTraceContext UpstreamTraceContext { get; set; }
}

/// <summary>When the gateway's calls to providers carry the trace context (<see cref="TelemetryOptions.UpstreamTraceContext"/>).</summary>
public enum UpstreamTraceContext
{
    /// <summary>
    /// When the current <c>Activity</c> is recorded (sampled), continues a trace from outside (the client sent <c>traceparent</c>), or
    /// something listens to HttpClient's activities (ActivitySource or DiagnosticListener of <c>System.Net.Http</c>): as
    /// .NET does. Otherwise the call is made outside the current <c>Activity</c>: no child <c>Activity</c>, no
    /// <c>traceparent</c> — an <c>Activity</c> that ASP.NET Core creates only because logging is on is not a trace anyone
    /// records, and its child and header cost every call.
    /// </summary>
    Auto,

    /// <summary>.NET's behaviour: whenever there is a current <c>Activity</c>, HttpClient starts a child and sends its <c>traceparent</c>.</summary>
    Always,
}

/// <summary>Options of the files API.</summary>
public sealed class FilesOptions
{
    /// <summary>Directory of the default file-system store. Default: <c>App_Data/bifrost/files</c> under the content root.</summary>
    public string? Directory { get; set; }

    /// <summary>Largest upload, in bytes. Default 512 MB (as OpenAI).</summary>
    [Range(1, long.MaxValue)]
    public long MaxUploadBytes { get; set; } = 512L * 1024 * 1024;

    /// <summary>Largest batch input file, in bytes. Default 200 MB (as OpenAI).</summary>
    [Range(1, long.MaxValue)]
    public long MaxBatchFileBytes { get; set; } = 200L * 1024 * 1024;

    /// <summary>Most requests in one batch input file. Default 50,000 (as OpenAI).</summary>
    [Range(1, int.MaxValue)]
    public int MaxBatchLines { get; set; } = 50_000;
}

/// <summary>Options of the batches API.</summary>
public sealed class BatchesOptions
{
    /// <summary>Lines of one batch run at the same time. Default 16.</summary>
    [Range(1, 1024)]
    public int Concurrency { get; set; } = 16;

    /// <summary>How often a running batch saves its progress (request counts). Default 1 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often a batch running on a provider's native batch API is polled. Default 10 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan NativePollInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a finished batch (and its result) is kept. Default 30 days.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "3650.00:00:00")]
    public TimeSpan RetainFor { get; set; } = TimeSpan.FromDays(30);
}

/// <summary>Options of the job engine (async inference, batches).</summary>
public sealed class JobsOptions
{
    /// <summary>Jobs run at the same time by this instance. Default 4.</summary>
    [Range(1, 1024)]
    public int Workers { get; set; } = 4;

    /// <summary>Unfinished jobs (pending + processing) above which new submissions get 429. Default 10,000.</summary>
    [Range(1, int.MaxValue)]
    public int MaxQueuedJobs { get; set; } = 10_000;

    /// <summary>The <c>Retry-After</c> sent with a 429 when the queue is full. Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan QueueFullRetryAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a finished job's result is kept, unless the request's <c>x-bf-async-job-result-ttl</c> says otherwise. Default 1 hour.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan ResultTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Longest result lifetime a request may ask for. Default 30 days.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "3650.00:00:00")]
    public TimeSpan MaxResultTtl { get; set; } = TimeSpan.FromDays(30);

    /// <summary>A worker's lease on a job; renewed every third of it while the job runs. Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often idle workers look at the store even without a doorbell ring (other instances, retries due). Default 1 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Runs of a job that may fail with a retryable error before it fails for good. Default 3.</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Delay before a failed job runs again; doubled on each attempt (capped by <see cref="RetryMaxDelay"/>, with jitter). Default 2 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Longest wait before a failed job runs again; a provider's <c>Retry-After</c> above it is not waited for (the job
    /// fails with the provider's error). The same backoff policy as provider retries. Default 5 minutes.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often finished jobs past their TTL are deleted. Default 1 minute.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Longest run of one async inference job: a run still going after it is cancelled and the job fails with 504
    /// <c>job_timeout</c> (not retried). Batches are not cut off as a whole (their <c>completion_window</c> bounds them);
    /// each batch line gets this deadline instead and fails alone with the same error. Default 10 minutes.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "7.00:00:00")]
    public TimeSpan MaxRunDuration { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Most jobs of one owner (see <c>IJobOwnerResolver</c>) running at the same time, counted in the store (across every
    /// instance sharing it). Jobs of an owner at the cap wait while workers take other owners' jobs, and claims interleave
    /// owners (the oldest job of the owner with the fewest running jobs first). Default (null): half of
    /// <see cref="Workers"/>, at least 1 — one caller can never hold every worker. Set it to <see cref="Workers"/> (or the
    /// fleet's total) to let a lone caller use them all; with several instances on one store, size it for the fleet.
    /// </summary>
    [Range(1, 1_000_000)]
    public int? MaxRunningPerOwner { get; set; }

    /// <summary>
    /// Unfinished jobs (pending + processing, async inference and batches) one owner may have; above it the owner's
    /// submissions get 429 <c>owner_queue_full</c> with <c>Retry-After</c> (<see cref="QueueFullRetryAfter"/>) while other
    /// owners are still served. Default 1,000.
    /// </summary>
    [Range(1, int.MaxValue)]
    public int MaxQueuedJobsPerOwner { get; set; } = 1_000;

    /// <summary>
    /// Bytes one owner may keep in the gateway: its files (uploads and batch output files) plus its stored jobs (async
    /// requests and results, until they expire). A file upload that does not fit is refused with 413
    /// <c>owner_storage_full</c> and nothing is kept; an async or batch submission while the owner is at or over the quota
    /// gets 429 <c>owner_storage_full</c> with <c>Retry-After</c>. Default 10 GiB.
    /// </summary>
    [Range(1, long.MaxValue)]
    public long MaxStoredBytesPerOwner { get; set; } = 10L * 1024 * 1024 * 1024;

    /// <summary>The per-owner cap of running jobs in effect (<see cref="MaxRunningPerOwner"/> or its default).</summary>
    internal int EffectiveMaxRunningPerOwner => MaxRunningPerOwner ?? Math.Max(1, Workers / 2);
}

/// <summary>One provider: which adapter serves it, where it is, its keys and models, timeouts and retries.</summary>
public sealed class ProviderOptions
{
    /// <summary>
    /// The adapter type: <c>openai</c> (any OpenAI-compatible HTTP API), <c>anthropic</c> (Anthropic's Messages API),
    /// <c>gemini</c> (Google's Gemini API), <c>vertex</c> (Google Cloud Vertex AI: Gemini and Claude), <c>cohere</c> (Cohere's v2 API), <c>azure</c> (Azure OpenAI), <c>bedrock</c>
    /// (Amazon Bedrock's Converse API), a named preset of
    /// the OpenAI-compatible type (<c>groq</c>, <c>mistral</c>, <c>xai</c>, <c>deepseek</c>, <c>openrouter</c>,
    /// <c>together</c>, <c>fireworks</c>, <c>cerebras</c>, <c>perplexity</c>, <c>ollama</c>, <c>vllm</c>, <c>lmstudio</c>) or
    /// <c>local</c> (the built-in deterministic provider). Not needed for a provider registered with <c>AddProvider</c>.
    /// When empty, a provider named <c>local</c> is local, one named <c>anthropic</c> is Anthropic and every other is <c>openai</c>.
    /// </summary>
    public string? Type { get; set; }

    /// <summary>
    /// Base URL of an HTTP provider, including the version segment, e.g. <c>https://api.openai.com/v1</c>.
    /// For <c>anthropic</c>: optional, default <c>https://api.anthropic.com</c> (<c>/v1</c> is added when missing).
    /// For <c>azure</c>: the resource endpoint, e.g. <c>https://my-resource.openai.azure.com</c>.
    /// For <c>bedrock</c>: optional, default <c>https://bedrock-runtime.{Region}.amazonaws.com</c>.
    /// </summary>
    public string? BaseUrl { get; set; }

    /// <summary>API keys; one is picked per attempt by weighted random choice. <c>env:NAME</c> reads the environment variable NAME.</summary>
    [Microsoft.Extensions.Options.ValidateEnumeratedItems]
    public IList<ProviderKeyOptions> Keys { get; set; } = [];

    /// <summary>Models this provider may serve. Empty: any model is passed through.</summary>
    public IList<string> Models { get; set; } = [];

    /// <summary>Extra headers sent with every upstream request (e.g. <c>OpenAI-Organization</c>).</summary>
    public IDictionary<string, string> Headers { get; set; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Header that carries the key. <c>Authorization</c> (the default) sends <c>Bearer &lt;key&gt;</c>;
    /// any other name (e.g. <c>api-key</c> for Azure OpenAI) sends the key as is.
    /// </summary>
    public string AuthHeader { get; set; } = "Authorization";

    /// <summary>
    /// Run batches whose lines all go to this provider on the provider's own batch API (OpenAI-compatible: files +
    /// batches upstream) instead of line by line through the gateway. Default false.
    /// </summary>
    public bool NativeBatches { get; set; }

    /// <summary>
    /// Whether the provider has its own Responses API (<c>POST {BaseUrl}/responses</c>, <c>responses/input_tokens</c>).
    /// Default: true for <c>api.openai.com</c>, false otherwise — then Responses requests run as chat completions.
    /// </summary>
    public bool? NativeResponses { get; set; }

    /// <summary>
    /// <c>max_tokens</c> sent to providers that require one (<c>anthropic</c>) when a request sets neither
    /// <c>max_tokens</c> nor <c>max_completion_tokens</c>. Default (null): 4096.
    /// </summary>
    [Range(1, int.MaxValue)]
    public int? DefaultMaxTokens { get; set; }

    /// <summary>Time allowed for one attempt until the response headers arrive (for streams, until the first chunk arrives). Default 10 minutes.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "1.00:00:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// <c>azure</c> only: the Azure OpenAI API version. Empty or <c>v1</c> (the default): the v1 API,
    /// <c>{BaseUrl}/openai/v1/chat/completions</c> with the deployment name as the body's <c>model</c>. A dated version
    /// (e.g. <c>2024-10-21</c>): the deployment URLs <c>{BaseUrl}/openai/deployments/{deployment}/chat/completions?api-version=...</c>.
    /// </summary>
    public string? ApiVersion { get; set; }

    /// <summary>
    /// <c>azure</c> only: model name → Azure deployment name. A model not listed is sent as its own deployment name.
    /// </summary>
    public IDictionary<string, string> Deployments { get; set; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// The cloud region of a regional provider: for <c>vertex</c> the Google Cloud location (default <c>us-central1</c>;
    /// <c>global</c> uses the global endpoint <c>aiplatform.googleapis.com</c>), for <c>bedrock</c> the AWS region (e.g. <c>us-east-1</c>) of the
    /// Bedrock Runtime endpoint and of SigV4 signatures (required unless BaseUrl is set).
    /// </summary>
    public string? Region { get; set; }

    /// <summary><c>vertex</c> only: the Google Cloud project id, the <c>projects/{project}</c> of every Vertex AI URL (required, except in express mode: an API key in <c>x-goog-api-key</c>).</summary>
    public string? ProjectId { get; set; }

    /// <summary>Retries after a retryable failure (429, 5xx, timeout, connection failure) before trying the fallbacks. Default 2.</summary>
    [Range(0, 10)]
    public int MaxRetries { get; set; } = 2;

    /// <summary>Delay before the first retry; doubled on each next one, with jitter. Default 500 ms.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait before a retry. A provider's <c>Retry-After</c> above it is not waited for: the fallbacks are tried instead. Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    // --- Bedrock native batches (bbatch) ---

    /// <summary>
    /// <c>bedrock</c> only: where native batches (<see cref="NativeBatches"/>) go — Bedrock batch inference reads its input from
    /// and writes its output to S3, and runs as an IAM service role. Null (the default): batches for this provider run line by
    /// line through the gateway.
    /// </summary>
    public BedrockBatchOptions? BedrockBatch { get; set; }
    // vbatch: Vertex AI native batches (batch prediction jobs through Cloud Storage)

    /// <summary>
    /// <c>vertex</c> only: the Cloud Storage location of native batches, <c>gs://bucket</c> or <c>gs://bucket/prefix</c>.
    /// With <see cref="NativeBatches"/>, a batch whose lines all name one Gemini model of the provider runs as a Vertex AI
    /// batch prediction job: its input is written under this location and the job writes its predictions there. Without
    /// it (or for Claude models) the gateway runs the batch line by line. Needs a <see cref="ProjectId"/> (express mode has
    /// no batch prediction).
    /// </summary>
    public string? BatchGcsUri { get; set; }

    /// <summary><c>vertex</c> only: the Cloud Storage JSON API's root used for <see cref="BatchGcsUri"/>. Default <c>https://storage.googleapis.com</c>.</summary>
    public string? StorageBaseUrl { get; set; }
}

/// <summary>An API key of a provider.</summary>
public sealed class ProviderKeyOptions
{
    /// <summary>An optional id, by which a virtual key's <see cref="VirtualKeyOptions.ProviderKeys"/> may restrict it to some keys.</summary>
    public string? Id { get; set; }

    /// <summary>The key, or <c>env:NAME</c> to read it from the environment variable NAME.</summary>
    public string? Value { get; set; }

    /// <summary>Relative weight in the random choice among keys. Default 1.</summary>
    [Range(0.0, double.MaxValue)]
    public double Weight { get; set; } = 1;

    /// <summary>Models this key may be used for. Empty: all of the provider's models.</summary>
    public IList<string> Models { get; set; } = [];
}

// --- Bedrock native batches (bbatch) ---

/// <summary>
/// Where a <c>bedrock</c> provider's native batches run (Bedrock batch inference,
/// https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference.html): the input JSONL is uploaded to
/// <see cref="S3Uri"/>, the job (<c>CreateModelInvocationJob</c>) runs as <see cref="RoleArn"/> and writes its output under
/// the same prefix. S3 and the control plane are signed with SigV4 (<c>UseBedrockSigV4</c>, package
/// Bifrost.Middleware.Bedrock): a Bedrock API key alone cannot reach S3.
/// </summary>
public sealed class BedrockBatchOptions
{
    /// <summary>The S3 location of batch input and output, <c>s3://bucket</c> or <c>s3://bucket/prefix</c>, in the provider's region. Required.</summary>
    public string? S3Uri { get; set; }

    /// <summary>The ARN of the service role the batch job runs as (it reads and writes <see cref="S3Uri"/>), <c>arn:aws:iam::{account}:role/{name}</c>. Required.</summary>
    public string? RoleArn { get; set; }

    /// <summary>
    /// An S3 endpoint to use instead of AWS's (a VPC endpoint, a test server); objects are then addressed path-style,
    /// <c>{S3Endpoint}/{bucket}/{key}</c>. Default: virtual-hosted <c>https://{bucket}.s3.{Region}.amazonaws.com/{key}</c>.
    /// </summary>
    public string? S3Endpoint { get; set; }

    /// <summary>The Bedrock control plane's URL instead of <c>https://bedrock.{Region}.amazonaws.com</c> (a VPC endpoint, a test server).</summary>
    public string? ControlPlaneUrl { get; set; }

    /// <summary>
    /// The fewest lines a batch needs to run on Bedrock; smaller batches run line by line through the gateway. Bedrock's quota
    /// "Minimum number of records per batch inference job" is 100 by default, per model and adjustable. Default 100.
    /// </summary>
    public int MinimumRecords { get; set; } = 100;
}
