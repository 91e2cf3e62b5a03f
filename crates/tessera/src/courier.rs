//! Couriers (SPEC §5 `[[courier]]`): `smtp` over lettre and `http` (any SMS gateway) over
//! reqwest. I/O only; the templates are `tessera_engine::courier`. Each delivery is bounded
//! by [`DELIVERY_TIMEOUT`]; it runs on the login's own task, so other requests go on.

use std::time::Duration;
use tessera_config::Courier as CourierConfig;
use tessera_engine::challenge::{BoxFuture, Channel, Courier, DirectoryUser, ServiceError};
use tessera_engine::courier::{Escape, SmtpTls, parse_smtp_url, render};

/// How long one delivery may take, start to finish.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

fn fields<'a>(code: &'a str, user: &'a DirectoryUser) -> [(&'static str, &'a str); 4] {
    [
        ("code", code),
        ("user", user.name.as_str()),
        ("email", user.email.as_deref().unwrap_or("")),
        ("phone", user.phone.as_deref().unwrap_or("")),
    ]
}

fn failed(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Unavailable(e.to_string())
}

/// Build the courier a `[[courier]]` entry describes.
pub fn build(cfg: &CourierConfig) -> Result<Box<dyn Courier>, String> {
    match cfg.kind.as_str() {
        "smtp" => Ok(Box::new(SmtpCourier::new(cfg.clone())?)),
        "http" => Ok(Box::new(HttpCourier::new(cfg.clone())?)),
        other => Err(format!("unknown courier kind {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------

pub struct SmtpCourier {
    cfg: CourierConfig,
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
}

impl SmtpCourier {
    fn new(cfg: CourierConfig) -> Result<SmtpCourier, String> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::transport::smtp::client::{Tls, TlsParameters};
        let (host, port, tls) = parse_smtp_url(&cfg.url)?;
        let params = || TlsParameters::new(host.clone()).map_err(|e| e.to_string());
        let tls = match tls {
            SmtpTls::Implicit => Tls::Wrapper(params()?),
            SmtpTls::Required => Tls::Required(params()?),
            SmtpTls::Opportunistic => Tls::Opportunistic(params()?),
            SmtpTls::None => Tls::None,
        };
        let mut b = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(&host)
            .port(port)
            .tls(tls)
            .timeout(Some(DELIVERY_TIMEOUT));
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            let p = String::from_utf8(p.expose().to_vec())
                .map_err(|_| "the courier password is not UTF-8".to_owned())?;
            b = b.credentials(Credentials::new(u.clone(), p));
        }
        Ok(SmtpCourier {
            transport: b.build(),
            cfg,
        })
    }

    async fn send(&self, to: &str, code: &str, user: &DirectoryUser) -> Result<(), ServiceError> {
        use lettre::AsyncTransport;
        use lettre::message::header::ContentType;
        let f = fields(code, user);
        let subject = render(
            self.cfg.subject.as_deref().unwrap_or("Your login code"),
            Escape::Plain,
            &f,
        );
        let body = render(
            self.cfg.body.as_deref().unwrap_or("Your code is {code}"),
            Escape::Plain,
            &f,
        );
        let from = self.cfg.from.as_deref().unwrap_or_default();
        let message = lettre::Message::builder()
            .from(
                from.parse()
                    .map_err(|e| failed(format!("from {from:?}: {e}")))?,
            )
            .to(to.parse().map_err(|e| failed(format!("to {to:?}: {e}")))?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(failed)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| failed(format!("SMTP {}: {e}", self.cfg.url)))
    }
}

impl Courier for SmtpCourier {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn deliver<'a>(
        &'a self,
        to: &'a str,
        code: &'a str,
        user: &'a DirectoryUser,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            tokio::time::timeout(DELIVERY_TIMEOUT, self.send(to, code, user))
                .await
                .unwrap_or_else(|_| Err(failed(format!("SMTP {}: timed out", self.cfg.url))))
        })
    }
}

// ---------------------------------------------------------------------------------------------

pub struct HttpCourier {
    cfg: CourierConfig,
    client: reqwest::Client,
    method: reqwest::Method,
}

impl HttpCourier {
    fn new(cfg: CourierConfig) -> Result<HttpCourier, String> {
        let method = cfg
            .http_method
            .as_deref()
            .unwrap_or("POST")
            .parse::<reqwest::Method>()
            .map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpCourier {
            cfg,
            client,
            method,
        })
    }

    async fn send(&self, to: &str, code: &str, user: &DirectoryUser) -> Result<(), ServiceError> {
        let mut f = fields(code, user).to_vec();
        // The destination this courier's channel chose.
        f.retain(|(k, _)| *k != "phone");
        f.push(("phone", to));
        let url = render(&self.cfg.url, Escape::Form, &f);
        let content_type = self
            .cfg
            .content_type
            .as_deref()
            .unwrap_or("application/json");
        let mut req = self.client.request(self.method.clone(), &url);
        if let Some(body) = &self.cfg.body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(render(body, Escape::for_content_type(content_type), &f));
        }
        // Header values may use {password}: an API key kept sealed like every secret.
        let password = self
            .cfg
            .password
            .as_ref()
            .map(|p| String::from_utf8_lossy(p.expose()).into_owned());
        let mut hf = f.clone();
        if let Some(p) = &password {
            hf.push(("password", p));
        }
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), render(v, Escape::Plain, &hf));
        }
        if let (Some(u), Some(p)) = (&self.cfg.username, &password) {
            req = req.basic_auth(u, Some(p));
        }
        let host = url.split('/').nth(2).unwrap_or("").to_owned();
        let resp = req
            .send()
            .await
            // Without the URL: it may carry the code or an API key in its query.
            .map_err(|e| failed(format!("SMS gateway {host}: {}", e.without_url())))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(failed(format!("SMS gateway {host} answered HTTP {status}")))
        }
    }
}

impl Courier for HttpCourier {
    fn channel(&self) -> Channel {
        Channel::Phone
    }

    fn deliver<'a>(
        &'a self,
        to: &'a str,
        code: &'a str,
        user: &'a DirectoryUser,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            tokio::time::timeout(DELIVERY_TIMEOUT, self.send(to, code, user))
                .await
                .unwrap_or_else(|_| Err(failed("SMS gateway: timed out")))
        })
    }
}
