//! The askama pages of the hosted login: the login and signup forms, the
//! `form_post` and `web_message` answer pages, and the error page (which
//! logout uses too), with the helpers that fill and render them.

use std::collections::HashMap;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use crate::config::{Client, Connection};
use crate::domain::authorize::Slot;
use crate::domain::grants::LoginTransaction;
use crate::http::pages::render;

/// The error page (also used by logout).
#[derive(Template)]
#[template(path = "error.html")]
pub struct MessagePage<'a> {
    /// Heading.
    pub title: &'a str,
    /// Explanation (escaped).
    pub message: &'a str,
}

/// An HTML error page with the standard security headers.
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(status, &MessagePage { title, message })
}

pub(super) fn internal_error_page() -> Response {
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The login could not be completed because of an error on our side. Please try again.",
    )
}

pub(super) fn expired_page() -> Response {
    message_page(
        StatusCode::BAD_REQUEST,
        "This login has expired",
        "This login form has expired or was already used. Go back to the application and start again.",
    )
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    client_name: &'a str,
    tx: &'a str,
    csrf: &'a str,
    username: &'a str,
    username_label: &'static str,
    username_type: &'static str,
    form_error: Option<String>,
    username_error: Option<&'static str>,
    password_error: Option<&'static str>,
    signup_url: String,
}

/// One configured signup field, as the page shows it.
struct FieldView {
    name: String,
    input_name: String,
    label: String,
    required: bool,
    value: String,
    max_length: Option<usize>,
    pattern: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage<'a> {
    client_name: &'a str,
    tx: &'a str,
    csrf: &'a str,
    email: &'a str,
    email_error: Option<String>,
    username: Option<&'a str>,
    username_error: Option<String>,
    password_error: Option<String>,
    password_policy: String,
    fields: Vec<FieldView>,
    form_error: Option<String>,
    login_url: String,
}

#[derive(Template)]
#[template(path = "form_post.html")]
pub(super) struct FormPostPage<'a> {
    pub(super) action: &'a str,
    pub(super) fields: Vec<(&'static str, String)>,
    pub(super) script: &'static str,
}

#[derive(Template)]
#[template(path = "web_message.html")]
pub(super) struct WebMessagePage<'a> {
    pub(super) origin: &'a str,
    pub(super) code: Option<&'a str>,
    pub(super) state: Option<&'a str>,
    pub(super) error: Option<&'a str>,
    pub(super) error_description: Option<&'a str>,
    pub(super) script: &'static str,
}

fn client_name(client: &Client) -> &str {
    if client.name.trim().is_empty() {
        &client.client_id
    } else {
        &client.name
    }
}

fn page_url(path: &str, tx: &str) -> String {
    let query = serde_urlencoded::to_string([("tx", tx)]).unwrap_or_default();
    format!("{path}?{query}")
}

/// Input name of a configured signup field (the bracket notation of the
/// signup API, so a field can never collide with `email` or `tx`).
pub(super) fn field_input_name(name: &str) -> String {
    format!("user_metadata[{name}]")
}

pub(super) struct LoginView<'a> {
    pub(super) username: &'a str,
    pub(super) form_error: Option<String>,
    pub(super) username_error: Option<&'static str>,
    pub(super) password_error: Option<&'static str>,
}

pub(super) fn render_login(
    status: StatusCode,
    client: &Client,
    connection: &Connection,
    tx_id: &str,
    tx: &LoginTransaction,
    view: LoginView<'_>,
) -> Response {
    render(
        status,
        &LoginPage {
            client_name: client_name(client),
            tx: tx_id,
            csrf: &tx.csrf,
            username: view.username,
            username_label: if connection.requires_username {
                "Email or username"
            } else {
                "Email"
            },
            username_type: if connection.requires_username {
                "text"
            } else {
                "email"
            },
            form_error: view.form_error,
            username_error: view.username_error,
            password_error: view.password_error,
            signup_url: page_url("/u/signup", tx_id),
        },
    )
}

#[derive(Default)]
pub(super) struct SignupView<'a> {
    pub(super) email: &'a str,
    pub(super) username: &'a str,
    pub(super) values: HashMap<String, String>,
    pub(super) problems: Vec<(Slot, String)>,
}

pub(super) fn render_signup(
    status: StatusCode,
    client: &Client,
    connection: &Connection,
    tx_id: &str,
    tx: &LoginTransaction,
    view: SignupView<'_>,
) -> Response {
    let problem = |slot: &Slot| {
        view.problems
            .iter()
            .find(|(s, _)| s == slot)
            .map(|(_, message)| message.clone())
    };
    let fields = connection
        .signup_fields
        .iter()
        .map(|field| FieldView {
            name: field.name.clone(),
            input_name: field_input_name(&field.name),
            label: field.label.clone(),
            required: field.required,
            value: view.values.get(&field.name).cloned().unwrap_or_default(),
            max_length: field.max_length,
            pattern: field.pattern.as_ref().map(|p| p.source.clone()),
            error: problem(&Slot::Field(field.name.clone())),
        })
        .collect();
    render(
        status,
        &SignupPage {
            client_name: client_name(client),
            tx: tx_id,
            csrf: &tx.csrf,
            email: view.email,
            email_error: problem(&Slot::Email),
            username: connection.requires_username.then_some(view.username),
            username_error: problem(&Slot::Username),
            password_error: problem(&Slot::Password),
            password_policy: connection.password_rules().describe(),
            fields,
            form_error: problem(&Slot::Form),
            login_url: page_url("/u/login", tx_id),
        },
    )
}
