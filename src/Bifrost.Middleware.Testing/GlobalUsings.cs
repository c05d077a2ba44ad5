global using Bifrost.Middleware.OpenAI;
global using Bifrost.Middleware.Providers;
