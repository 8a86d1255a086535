//! `#[derive(SizeOf)]` for brisk. Use it through `brisk::SizeOf`; the attributes and the way
//! bytes are counted are documented on the `SizeOf` trait in brisk.
//!
//! The derived `size_of` is the value's inline size (`size_of_val(self)`, padding included) plus
//! each field's heap bytes (`SizeOf::heap_size`), per variant for an enum. Generated code
//! refers to `::brisk`, so the crate must be a dependency under that name.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, Attribute, Data, DeriveInput, Error, Expr, ExprLit, Fields, Lit, LitStr,
    Meta, Path, Token, WherePredicate,
};

/// Derives `brisk::SizeOf`: inline size plus the heap bytes of every field.
///
/// Container attributes: `#[size_of(spill = "postcard")]` (also implement `Spill` through
/// postcard and return its codec from `spill_codec`; the type must be `Serialize` and
/// `DeserializeOwned`), `#[size_of(bound = "T: SizeOf")]` (replace the `T: SizeOf` bound put
/// on every type parameter). Field attributes: `#[size_of(skip)]` (count only the field's
/// inline bytes; it needs no `SizeOf`), `#[size_of(with = "path")]` (heap bytes from
/// `path(&field) -> usize`, for foreign types).
#[proc_macro_derive(SizeOf, attributes(size_of))]
pub fn derive_size_of(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// How one field's heap bytes are counted.
enum FieldMode {
    /// `SizeOf::heap_size(field)`.
    Counted,
    /// Inline bytes only.
    Skip,
    /// `path(field)`.
    With(Path),
}

/// Options on the type itself.
#[derive(Default)]
struct ContainerOptions {
    spill_postcard: bool,
    bound: Option<Punctuated<WherePredicate, Token![,]>>,
}

fn string_value(meta: &syn::meta::ParseNestedMeta) -> syn::Result<LitStr> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s),
        other => Err(Error::new(other.span(), "expected a string literal")),
    }
}

fn size_of_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("size_of"))
}

fn container_options(attrs: &[Attribute]) -> syn::Result<ContainerOptions> {
    let mut options = ContainerOptions::default();
    for attr in size_of_attrs(attrs) {
        if let Meta::Path(_) = attr.meta {
            return Err(Error::new(
                attr.span(),
                "expected `#[size_of(spill = \"postcard\")]` or `#[size_of(bound = \"...\")]`",
            ));
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("spill") {
                let codec = string_value(&meta)?;
                match codec.value().as_str() {
                    "postcard" => options.spill_postcard = true,
                    other => {
                        return Err(Error::new(
                            codec.span(),
                            format!("unknown spill codec `{other}`: the derive knows `postcard`"),
                        ))
                    }
                }
                Ok(())
            } else if meta.path.is_ident("bound") {
                let text = string_value(&meta)?;
                options.bound = Some(
                    text.parse_with(Punctuated::<WherePredicate, Token![,]>::parse_terminated)?,
                );
                Ok(())
            } else if meta.path.is_ident("skip") || meta.path.is_ident("with") {
                Err(meta.error("`skip` and `with` go on fields, not on the type"))
            } else {
                Err(meta.error("unknown size_of option: expected `spill` or `bound`"))
            }
        })?;
    }
    Ok(options)
}

fn field_mode(attrs: &[Attribute]) -> syn::Result<FieldMode> {
    let mut mode = FieldMode::Counted;
    for attr in size_of_attrs(attrs) {
        attr.parse_nested_meta(|meta| {
            if !matches!(mode, FieldMode::Counted) {
                return Err(meta.error("a field takes one of `skip` and `with`"));
            }
            if meta.path.is_ident("skip") {
                mode = FieldMode::Skip;
                Ok(())
            } else if meta.path.is_ident("with") {
                mode = FieldMode::With(string_value(&meta)?.parse()?);
                Ok(())
            } else if meta.path.is_ident("spill") || meta.path.is_ident("bound") {
                Err(meta.error("`spill` and `bound` go on the type, not on a field"))
            } else {
                Err(meta.error("unknown size_of field option: expected `skip` or `with`"))
            }
        })?;
    }
    Ok(mode)
}

/// A pattern binding every counted field of `fields`, and the sum of their heap bytes.
fn fields_heap(fields: &Fields) -> syn::Result<(TokenStream2, TokenStream2)> {
    let mut terms = Vec::new();
    let pattern = match fields {
        Fields::Named(named) => {
            let mut binds = Vec::new();
            for f in &named.named {
                let name = f
                    .ident
                    .as_ref()
                    .ok_or_else(|| Error::new(f.span(), "unnamed"))?;
                let bind = format_ident!("__field_{}", name);
                match field_mode(&f.attrs)? {
                    FieldMode::Skip => continue,
                    FieldMode::Counted => {
                        terms.push(quote! { ::brisk::SizeOf::heap_size(#bind) });
                    }
                    FieldMode::With(path) => terms.push(quote! { #path(#bind) }),
                }
                binds.push(quote! { #name: #bind });
            }
            quote! { { #(#binds,)* .. } }
        }
        Fields::Unnamed(unnamed) => {
            let mut binds = Vec::new();
            for (i, f) in unnamed.unnamed.iter().enumerate() {
                let bind = format_ident!("__field_{}", i);
                match field_mode(&f.attrs)? {
                    FieldMode::Skip => {
                        binds.push(quote! { _ });
                        continue;
                    }
                    FieldMode::Counted => {
                        terms.push(quote! { ::brisk::SizeOf::heap_size(#bind) });
                    }
                    FieldMode::With(path) => terms.push(quote! { #path(#bind) }),
                }
                binds.push(quote! { #bind });
            }
            quote! { ( #(#binds),* ) }
        }
        Fields::Unit => quote! {},
    };
    let sum = quote! { 0usize #(+ #terms)* };
    Ok((pattern, sum))
}

fn expand(input: DeriveInput) -> syn::Result<TokenStream2> {
    let options = container_options(&input.attrs)?;
    let name = &input.ident;

    let heap = match &input.data {
        Data::Struct(s) => {
            let (pattern, sum) = fields_heap(&s.fields)?;
            quote! {
                let Self #pattern = self;
                #sum
            }
        }
        Data::Enum(e) => {
            let mut arms = Vec::new();
            for v in &e.variants {
                let variant = &v.ident;
                let (pattern, sum) = fields_heap(&v.fields)?;
                arms.push(quote! { Self::#variant #pattern => #sum, });
            }
            if arms.is_empty() {
                // No value of an empty enum exists, so `size_of` is never called.
                quote! { 0usize }
            } else {
                quote! {
                    match self {
                        #(#arms)*
                    }
                }
            }
        }
        Data::Union(u) => {
            return Err(Error::new(
                u.union_token.span,
                "SizeOf cannot be derived for a union: which field holds heap memory is not known; write the impl by hand",
            ))
        }
    };

    let mut generics = input.generics.clone();
    {
        let where_clause = generics.make_where_clause();
        match &options.bound {
            Some(bound) => where_clause.predicates.extend(bound.iter().cloned()),
            None => {
                for param in input.generics.type_params() {
                    let ident = &param.ident;
                    where_clause
                        .predicates
                        .push(syn::parse_quote! { #ident: ::brisk::SizeOf });
                }
            }
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let self_ty = quote! { #name #ty_generics };

    let mut spill_impl = TokenStream2::new();
    let mut codec_fn = TokenStream2::new();
    let mut size_of_where = quote! { #where_clause };
    if options.spill_postcard {
        let has_type_params = input.generics.type_params().next().is_some();
        let tag = if has_type_params {
            quote! { ::core::any::type_name::<Self>() }
        } else {
            quote! { ::core::concat!("postcard:", ::core::module_path!(), "::", ::core::stringify!(#name)) }
        };
        let (spill_impl_generics, _, spill_where) = input.generics.split_for_impl();
        let mut spill_predicates: Vec<TokenStream2> = spill_where
            .map(|w| w.predicates.iter().map(|p| quote! { #p }).collect())
            .unwrap_or_default();
        spill_predicates.push(quote! {
            #self_ty: ::brisk::__private::serde::Serialize
                + ::brisk::__private::serde::de::DeserializeOwned
                + ::core::marker::Send
                + ::core::marker::Sync
                + 'static
        });
        spill_impl = quote! {
            #[automatically_derived]
            impl #spill_impl_generics ::brisk::spill::codec::Spill for #self_ty
            where #(#spill_predicates),*
            {
                fn tag() -> &'static str {
                    #tag
                }
                fn encode(&self, out: &mut ::std::vec::Vec<u8>) -> ::brisk::Result<()> {
                    ::brisk::spill::codec::postcard_encode(self, <Self as ::brisk::spill::codec::Spill>::tag(), out)
                }
                fn decode(bytes: &[u8]) -> ::brisk::Result<Self> {
                    ::brisk::spill::codec::postcard_decode(bytes, <Self as ::brisk::spill::codec::Spill>::tag())
                }
            }
        };
        codec_fn = quote! {
            fn spill_codec() -> ::core::option::Option<::brisk::spill::codec::Codec>
            where
                Self: ::core::marker::Sized + 'static,
            {
                ::core::option::Option::Some(::brisk::spill::codec::Codec::of::<Self>())
            }
        };
        let predicates = where_clause
            .map(|w| {
                w.predicates
                    .iter()
                    .map(|p| quote! { #p })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        size_of_where = quote! {
            where #(#predicates,)* #self_ty: ::brisk::spill::codec::Spill
        };
    }

    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::brisk::SizeOf for #self_ty #size_of_where {
            #[allow(unused_variables)]
            fn size_of(&self) -> usize {
                let heap: usize = { #heap };
                ::core::mem::size_of_val(self) + heap
            }
            #codec_fn
        }
        #spill_impl
    })
}
